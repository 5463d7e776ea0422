"""Typed reads from decoded JSON objects, with one error type for anything malformed."""

from __future__ import annotations

from typing import Any, Mapping


class FieldError(ValueError):
    """A JSON field is missing or has the wrong type."""


def get_field(data: Mapping[str, Any], key: str) -> Any:
    if not isinstance(data, Mapping):
        raise FieldError(f"expected an object, got {type(data).__name__}")
    if key not in data:
        raise FieldError(f"missing field {key!r}")
    return data[key]


def get_int(data: Mapping[str, Any], key: str) -> int:
    value = get_field(data, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"field {key!r} must be an integer, got {value!r}")
    return value


def get_optional_int(data: Mapping[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else get_int(data, key)


def get_float(data: Mapping[str, Any], key: str) -> float:
    value = get_field(data, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"field {key!r} must be a number, got {value!r}")
    return float(value)


def get_optional_float(data: Mapping[str, Any], key: str) -> float | None:
    return None if data.get(key) is None else get_float(data, key)


def get_str(data: Mapping[str, Any], key: str) -> str:
    value = get_field(data, key)
    if not isinstance(value, str):
        raise FieldError(f"field {key!r} must be a string, got {value!r}")
    return value


def get_optional_str(data: Mapping[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else get_str(data, key)


def get_dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = get_field(data, key)
    if not isinstance(value, dict):
        raise FieldError(f"field {key!r} must be an object, got {value!r}")
    return value


def get_list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = get_field(data, key)
    if not isinstance(value, list):
        raise FieldError(f"field {key!r} must be a list, got {value!r}")
    return value
