"""Typed reads from decoded JSON objects, with one error type for anything malformed."""

from __future__ import annotations

from typing import Any, Mapping


class FieldError(ValueError):
    """A JSON field is missing or has the wrong type."""


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for an error message (a wrong value may
    be a list of a million numbers)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of more digits than str() makes, a deep list
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def get_field(data: Mapping[str, Any], key: str) -> Any:
    if not isinstance(data, Mapping):
        raise FieldError(f"expected an object, got {type(data).__name__}")
    if key not in data:
        raise FieldError(f"missing field {shown(key)}")
    return data[key]


def get_int(data: Mapping[str, Any], key: str) -> int:
    value = get_field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"field {shown(key)} must be an integer, got {shown(value)}")
    return value


def get_optional_int(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else get_int(data, key)


def get_float(data: Mapping[str, Any], key: str) -> float:
    value = get_field(data, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"field {shown(key)} must be a number, got {shown(value)}")
    return float(value)


def get_optional_float(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else get_float(data, key)


def get_str(data: Mapping[str, Any], key: str) -> str:
    value = get_field(data, key)
    if not isinstance(value, str):
        raise FieldError(f"field {shown(key)} must be a string, got {shown(value)}")
    return value


def get_optional_str(data: Mapping[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else get_str(data, key)


def get_dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = get_field(data, key)
    if not isinstance(value, dict):
        raise FieldError(f"field {shown(key)} must be an object, got {shown(value)}")
    return value


def get_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = get_field(data, key)
    if not isinstance(value, list):
        raise FieldError(f"field {shown(key)} must be a list, got {shown(value)}")
    return value
