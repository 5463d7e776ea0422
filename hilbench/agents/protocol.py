"""The versioned JSON the host and the agent exchange: a job in, a result out."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from hilbench.agents import AGENT_VERSION
from hilbench.core.errors import (
    AgentError,
    HilbenchError,
    ModelError,
    SettingsError,
    UnsupportedFormatError,
)
from hilbench.core.fields import FieldError, get_dict, get_int, get_optional_str, get_str, shown
from hilbench.core.measurement import Measurement
from hilbench.core.settings import BenchmarkSettings

SCHEMA_VERSION = 2  # 2: a queued job carries the DVFS levels to pin
PROGRESS_PREFIX = "HILBENCH-PROGRESS "

_ERROR_KINDS = {
    "unsupported-format": UnsupportedFormatError,
    "model": ModelError,
    "settings": SettingsError,
    "agent": AgentError,
}


@dataclass(frozen=True)
class JobSpec:
    """One model on one device with its settings. ``sysfs_root`` is ``/`` on a real device;
    ``emulation`` is the speed model of an emulated device (None on real hardware)."""

    job_id: str
    device: str
    device_kind: str
    model_path: str
    model_sha256: str
    settings: BenchmarkSettings
    sysfs_root: str = "/"
    execution_provider: str = "CPUExecutionProvider"
    emulation: dict[str, Any] | None = None
    dvfs_pin: dict[str, int] | None = None  # DVFS domain -> kHz, for this job only
    power_command: str | None = None  # prints watts: an external meter on this device

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "job_id": self.job_id,
                "device": self.device,
                "device_kind": self.device_kind,
                "model_path": self.model_path,
                "model_sha256": self.model_sha256,
                "settings": self.settings.to_dict(),
                "sysfs_root": self.sysfs_root,
                "execution_provider": self.execution_provider,
                "emulation": self.emulation,
                "dvfs_pin": self.dvfs_pin,
                "power_command": self.power_command,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        try:
            data = json.loads(text)
            _check_version(data, "job")
            emulation = data.get("emulation")
            return cls(
                job_id=get_str(data, "job_id"),
                device=get_str(data, "device"),
                device_kind=get_str(data, "device_kind"),
                model_path=get_str(data, "model_path"),
                model_sha256=get_str(data, "model_sha256"),
                settings=BenchmarkSettings.from_dict(get_dict(data, "settings")),
                sysfs_root=get_str(data, "sysfs_root"),
                execution_provider=get_str(data, "execution_provider"),
                emulation=emulation if isinstance(emulation, dict) else None,
                dvfs_pin=_pins(data.get("dvfs_pin")),
                power_command=get_optional_str(data, "power_command"),
            )
        except (FieldError, *_MALFORMED) as exc:
            raise AgentError(f"malformed job JSON: {one_line(str(exc))}") from exc


def _pins(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError("field 'dvfs_pin' must be an object of domain -> kHz")
    return {str(name): int(khz) for name, khz in value.items()}


def _check_version(data: Mapping[str, Any], what: str) -> None:
    version = get_int(data, "schema_version")
    if version != SCHEMA_VERSION:
        newer = "host" if version > SCHEMA_VERSION else "agent"
        raise AgentError(
            f"{what} schema version {version}, this side speaks {SCHEMA_VERSION}: "
            f"upgrade hilbench on the {'device' if newer == 'host' else 'host'}"
        )


def ok_result(job_id: str, measurement: Measurement) -> str:
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "agent_version": AGENT_VERSION,
            "job_id": job_id,
            "status": "ok",
            "measurement": measurement.to_dict(),
        }
    )


def error_result(job_id: str, error: HilbenchError) -> str:
    kind = next(
        (name for name, cls in _ERROR_KINDS.items() if isinstance(error, cls)), "agent"
    )
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "agent_version": AGENT_VERSION,
            "job_id": job_id,
            "status": "error",
            "error": {"kind": kind, "message": str(error)},
        }
    )


def progress_line(phase: str, fraction: float) -> str:
    return PROGRESS_PREFIX + json.dumps({"phase": phase, "fraction": fraction})


def parse_progress(line: str) -> tuple[str, float] | None:
    """(phase, fraction) from an agent's progress line; None for any other stderr line,
    including a garbled one: progress is only for display."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        update = json.loads(line[len(PROGRESS_PREFIX) :])
        return str(update["phase"]), float(update["fraction"])
    except (ValueError, TypeError, KeyError):
        return None


def parse_result(text: str, job_id: str) -> Measurement:
    """The measurement in an agent's answer; raise the error the agent reported, mapped to
    the hilbench tree, or ``AgentError`` (one line) if the answer is not a valid result:
    whatever the text, no other exception."""
    try:
        data = json.loads(text)
        _check_version(data, "result")
        found = get_str(data, "job_id")
        if found != job_id:
            raise AgentError(f"result is for job {shown(found)}, expected {job_id}")
        status = get_str(data, "status")
        if status == "error":
            error = get_dict(data, "error")
            kind = _ERROR_KINDS.get(get_str(error, "kind"), AgentError)
            message = get_str(error, "message")
        elif status != "ok":
            raise AgentError(f"result status {shown(status)}, expected 'ok' or 'error'")
        else:
            document = get_dict(data, "measurement")
            check_numbers(document, "measurement")
            return _storable(Measurement.from_dict(document))
    except (SettingsError, FieldError, *_MALFORMED) as exc:
        raise AgentError(f"malformed result JSON from agent: {one_line(str(exc))}") from exc
    raise kind(one_line(message) or "the agent reported an error without a message")


# What a malformed document makes the readers raise: wrong types (TypeError, KeyError,
# AttributeError), bad values (ValueError, OverflowError: int() of infinity), and nesting
# deeper than the JSON decoder goes (RecursionError).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError,
              RecursionError)
_INT64 = 2**63


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (its lines joined), at most ``limit`` characters, no NUL (which
    PostgreSQL text refuses)."""
    joined = " ".join(text.replace("\0", "\\0").split())
    return joined if len(joined) <= limit else joined[:limit] + "..."


def check_numbers(document: dict[str, Any] | list[Any], where: str) -> None:
    """``AgentError`` for a value no store takes: a NaN or infinite number, an integer
    outside 64 bits, a NUL character (PostgreSQL text refuses it)."""
    stack: list[tuple[dict[str, Any] | list[Any], str]] = [(document, where)]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list)):
                stack.append((value, f"{path}.{key}" if isinstance(node, dict)
                              else f"{path}[{key}]"))
            elif _unstorable(value) or (isinstance(key, str) and "\0" in key):
                where_ = f"{path}.{key}" if isinstance(node, dict) else f"{path}[{key}]"
                raise AgentError(f"malformed result JSON from agent: {one_line(where_, 120)} "
                                 f"holds {shown(value, 40)}")


_INT32 = 2**31
_LABEL_CHARS = 64  # runtime, its version and the execution provider are columns this wide


def _storable(measurement: Measurement) -> Measurement:
    """``measurement``, or ``AgentError`` where the profile store has no room for it: a
    count or a thread number past 32 bits, a runtime name past 64 characters."""
    environment = measurement.environment
    for name in ("runtime", "runtime_version", "execution_provider"):
        if len(getattr(environment, name)) > _LABEL_CHARS:
            raise AgentError(f"malformed result JSON from agent: {name} is longer than "
                             f"{_LABEL_CHARS} characters: {shown(getattr(environment, name))}")
    if not 0 < measurement.summary.count < _INT32 or not 0 < (environment.threads or 1) < _INT32:
        raise AgentError(f"malformed result JSON from agent: {measurement.summary.count} runs "
                         f"on {environment.threads} threads")
    return measurement


def _unstorable(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, int):
        return not -_INT64 <= value < _INT64
    return isinstance(value, str) and "\0" in value
