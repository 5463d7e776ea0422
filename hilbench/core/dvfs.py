"""The frequency state of a device's DVFS domains at measurement time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from hilbench.core.fields import get_list, get_optional_int, get_optional_str, get_str


@dataclass(frozen=True)
class DomainState:
    """One DVFS domain (a CPU cluster, a GPU): frequencies in kHz, governor if known."""

    name: str
    cpus: tuple[int, ...] = ()
    governor: str | None = None
    cur_khz: int | None = None
    min_khz: int | None = None
    max_khz: int | None = None
    available_khz: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cpus": list(self.cpus),
            "governor": self.governor,
            "cur_khz": self.cur_khz,
            "min_khz": self.min_khz,
            "max_khz": self.max_khz,
            "available_khz": list(self.available_khz),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainState:
        return cls(
            name=get_str(data, "name"),
            cpus=tuple(int(c) for c in data.get("cpus", [])),
            governor=get_optional_str(data, "governor"),
            cur_khz=get_optional_int(data, "cur_khz"),
            min_khz=get_optional_int(data, "min_khz"),
            max_khz=get_optional_int(data, "max_khz"),
            available_khz=tuple(int(f) for f in data.get("available_khz", [])),
        )


@dataclass(frozen=True)
class DvfsState:
    """Every DVFS domain found; empty when the platform exposes none (containers, macOS).
    ``power_mode``: a Jetson's nvpmodel mode (``"1 (7W)"``), which caps its clocks."""

    domains: tuple[DomainState, ...] = ()
    power_mode: str | None = None

    def domain(self, name: str) -> DomainState | None:
        return next((d for d in self.domains if d.name == name), None)

    def policy(self) -> tuple[tuple[str, str | None, int | None, int | None], ...]:
        """What makes two measurements comparable: governor and frequency limits per domain.
        The instantaneous frequency is not part of it (it moves under most governors)."""
        domains = tuple((d.name, d.governor, d.min_khz, d.max_khz) for d in self.domains)
        if self.power_mode is None:
            return domains
        return (*domains, ("power_mode", self.power_mode, None, None))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"domains": [d.to_dict() for d in self.domains]}
        if self.power_mode is not None:
            data["power_mode"] = self.power_mode
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DvfsState:
        domains: list[DomainState] = [DomainState.from_dict(d) for d in get_list(data, "domains")]
        return cls(tuple(domains), get_optional_str(data, "power_mode"))
