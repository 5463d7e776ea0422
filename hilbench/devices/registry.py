"""Device names, built-in devices, and choosing devices for a run."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hilbench.core.errors import DeviceError, UnknownDeviceError
from hilbench.core.records import DEVICE_KINDS, REPLAY_KIND, DeviceRecord
from hilbench.devices.presets import PRESETS, get_preset

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
LOCAL_DEVICE = "local"
EMULATED_PREFIX = "emu-"


def new_device_record(
    name: str, kind: str, preset: str | None = None, transport: dict[str, Any] | None = None
) -> DeviceRecord:
    """Validate a device definition; ``DeviceError`` says what is wrong."""
    if not NAME_PATTERN.match(name):
        raise DeviceError(
            f"invalid device name {name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if kind not in DEVICE_KINDS:
        raise DeviceError(f"unknown device kind {kind!r}; choose one of: {', '.join(DEVICE_KINDS)}")
    if kind == "emulated":
        if preset is None:
            raise DeviceError(
                f"an emulated device needs --preset, one of: {', '.join(sorted(PRESETS))}"
            )
        get_preset(preset)
    elif preset is not None:
        raise DeviceError(f"--preset applies to emulated devices only, not to kind {kind!r}")
    if kind == "ssh" and not transport:
        raise DeviceError("an SSH device needs --ssh user@host[:port] and --key PATH")
    if kind == "adb" and not transport:
        raise DeviceError("an ADB device needs --adb SERIAL (or host:port)")
    return DeviceRecord(name=name, kind=kind, preset=preset, transport=transport or {})


def builtin_devices() -> list[DeviceRecord]:
    """This machine's CPU and one emulated device per preset."""
    records = [new_device_record(LOCAL_DEVICE, "local")]
    records += [
        new_device_record(EMULATED_PREFIX + name, "emulated", name) for name in sorted(PRESETS)
    ]
    return records


def _matches_kind(record: DeviceRecord, wanted: str) -> bool:
    return wanted in (record.kind, record.preset, record.info.get("class"))


def select_devices(registered: Sequence[DeviceRecord], spec: str) -> list[DeviceRecord]:
    """``all``, ``a,b`` or ``kind=phone`` (kind, preset or device class). ``all`` leaves out
    replay devices (recorded public latencies, nothing to run): name them or ask
    ``kind=replay``."""
    spec = spec.strip()
    if spec == "all":
        chosen = [r for r in registered if r.kind != REPLAY_KIND]
    elif spec.startswith("kind="):
        wanted = spec[len("kind=") :]
        chosen = [r for r in registered if _matches_kind(r, wanted)]
        if not chosen:
            raise UnknownDeviceError(f"no registered device of kind {wanted!r}")
    else:
        by_name = {r.name: r for r in registered}
        names = [n.strip() for n in spec.split(",") if n.strip()]
        missing = [n for n in names if n not in by_name]
        if missing:
            known = ", ".join(sorted(by_name)) or "none"
            raise UnknownDeviceError(f"unknown device {', '.join(missing)}; registered: {known}")
        chosen = [by_name[n] for n in dict.fromkeys(names)]
    if not chosen:
        raise UnknownDeviceError("no devices registered; run `bench devices add` or `bench demo`")
    return chosen

