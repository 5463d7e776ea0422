"""Parse what users type: durations with units, input shapes, symbolic dimension sizes."""

from __future__ import annotations

import re

from hilbench.core.errors import SettingsError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m)?\s*$")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"500us"``, ``"20ms"``, ``"1.5s"``, ``"2m"`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"invalid duration {text!r}: use e.g. 500ms, 1.5s or 2m")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _name_value(item: str, what: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise SettingsError(f"invalid {what} {item!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def parse_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``["input_ids=1x128"]`` -> ``{"input_ids": (1, 128)}``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, value = _name_value(item, "shape")
        try:
            shape = tuple(int(d) for d in re.split(r"[x,]", value))
        except ValueError:
            message = f"invalid shape {item!r}: expected e.g. input=1x3x224x224"
            raise SettingsError(message) from None
        shapes[name] = shape
    return shapes


def parse_dims(items: list[str]) -> dict[str, int]:
    """``["sequence=64"]`` -> ``{"sequence": 64}`` for symbolic (dynamic) dimensions."""
    dims: dict[str, int] = {}
    for item in items:
        name, value = _name_value(item, "dimension")
        if not value.isdigit():
            raise SettingsError(f"invalid dimension {item!r}: the size must be a whole number")
        dims[name] = int(value)
    return dims


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(hz|khz)?\s*$", re.IGNORECASE)
_CELSIUS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:°?c)?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> float:
    """``"10Hz"``, ``"1kHz"`` or a bare number of Hz; returns the interval in seconds."""
    match = _RATE.match(text)
    hz = float(match.group(1)) * (1000.0 if (match.group(2) or "").lower() == "khz" else 1.0) \
        if match else 0.0
    if hz <= 0:
        raise SettingsError(f"invalid sampling rate {text!r}: use e.g. 10Hz or 100Hz")
    return 1.0 / hz


def parse_celsius(text: str | None) -> float | None:
    """``"45C"``, ``"45°C"`` or ``"45"``."""
    if text is None:
        return None
    match = _CELSIUS.match(text)
    if not match:
        raise SettingsError(f"invalid temperature {text!r}: use e.g. 45C")
    return float(match.group(1))
