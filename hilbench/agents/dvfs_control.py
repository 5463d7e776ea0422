"""Pinning DVFS domains to one frequency for a run, and always putting them back.

cpufreq: ``scaling_min_freq = scaling_max_freq = level`` (kHz); devfreq: ``min_freq =
max_freq = level`` (Hz). Needs root on a real device; where a write is refused, nothing is
pinned for that domain and the run records the frequencies it observed instead."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hilbench.agents.sysfs import dvfs_directories
from hilbench.core.dvfs import DomainState
from hilbench.core.errors import SettingsError

CPUFREQ_FILES = ("scaling_min_freq", "scaling_max_freq")
DEVFREQ_FILES = ("min_freq", "max_freq")


@dataclass(frozen=True)
class Limits:
    directory: Path
    files: tuple[str, str]
    unit: int  # sysfs value = kHz * unit
    saved: tuple[str, str]


def _files(domain: DomainState) -> tuple[tuple[str, str], int]:
    return (CPUFREQ_FILES, 1) if domain.cpus else (DEVFREQ_FILES, 1000)


def _write_limits(directory: Path, files: tuple[str, str], low: str, high: str,
                  raising: bool) -> None:
    """min <= max at every step: raise the max first when going up, the min first down."""
    min_file, max_file = directory / files[0], directory / files[1]
    order = ((max_file, high), (min_file, low)) if raising else ((min_file, low), (max_file, high))
    for path, value in order:
        path.write_text(value + "\n")


class FrequencyPin:
    """``with FrequencyPin(root, {"cpu4-7": 1401000}) as pin:`` pins, then restores the
    limits it found, whatever happens inside. ``pin.notes`` says what could not be pinned."""

    def __init__(self, root: Path, requests: dict[str, int]) -> None:
        self._root = root
        self._requests = dict(requests)
        self._pinned: list[Limits] = []
        self.notes: list[str] = []

    def __enter__(self) -> FrequencyPin:
        try:
            self._pin_all()
        except BaseException:  # also TERM/HUP while pinning: put back what was written
            self.restore()
            raise
        return self

    def _pin_all(self) -> None:
        domains = {domain.name: (domain, path) for domain, path in dvfs_directories(self._root)}
        for name, khz in self._requests.items():
            if name not in domains:
                raise SettingsError(f"no DVFS domain {name!r} on this device; it has "
                                    f"{', '.join(domains) or 'none'}")
            self._pin(*domains[name], khz)

    def _pin(self, domain: DomainState, directory: Path, khz: int) -> None:
        files, unit = _files(domain)
        if domain.available_khz and khz not in domain.available_khz:
            raise SettingsError(f"{domain.name} has no level {khz} kHz; its levels: "
                                f"{', '.join(str(f) for f in domain.available_khz)}")
        try:
            saved = ((directory / files[0]).read_text().strip(),
                     (directory / files[1]).read_text().strip())
        except OSError as exc:
            self._not_pinned(domain, exc)
            return
        limits = Limits(directory, files, unit, saved)
        self._pinned.append(limits)  # before writing: a signal mid-write still restores
        try:
            raising = khz * unit > int(saved[1])
            _write_limits(directory, files, str(khz * unit), str(khz * unit), raising)
        except OSError as exc:  # what was written is put back by restore()
            self._not_pinned(domain, exc)

    def _not_pinned(self, domain: DomainState, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        self.notes.append(f"DVFS: {domain.name} not pinned ({reason}; pinning needs root): "
                          "the frequencies observed are recorded instead")

    def restore(self) -> None:
        """Put back every domain's limits, each one even where another fails."""
        while self._pinned:
            limits = self._pinned.pop()
            low, high = limits.saved
            try:
                current = tuple((limits.directory / name).read_text().strip()
                                for name in limits.files)
                if current != limits.saved:  # a write that failed may have changed nothing
                    _write_limits(limits.directory, limits.files, low, high,
                                  int(high) > int(current[1]))
            except (OSError, ValueError) as exc:
                self.notes.append(f"DVFS: {limits.directory.name} not restored to {low}-{high}"
                                  f": {exc}")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.restore()
