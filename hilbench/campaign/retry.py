"""Jobs whose device could not be reached are run again, after a wait that doubles, until
the retry budget is spent; any other failure is final."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hilbench.core.errors import CommandTimeoutError, HilbenchError, SettingsError, TransportError

DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_S = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    """A job that failed on its transport (connection lost or refused, device gone) runs
    again up to ``retries`` times: ``backoff_s`` after the first failure, twice that after
    the second, and so on. A model error, an agent error and a command that ran past its
    timeout would fail again: they are not retried."""

    retries: int = DEFAULT_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise SettingsError(f"retries must be >= 0, got {self.retries}")
        if self.backoff_s < 0:
            raise SettingsError(f"retry backoff must be >= 0, got {self.backoff_s:g} s")

    def allows(self, failures: int, error: HilbenchError) -> bool:
        """Whether a job that failed ``failures`` times, the last with ``error``, runs again."""
        return failures <= self.retries and retryable(error)

    def delay_s(self, failures: int) -> float:
        """How long to wait before the attempt after ``failures`` failures."""
        return self.backoff_s * float(2 ** (failures - 1))


NO_RETRIES = RetryPolicy(retries=0)


def retryable(error: HilbenchError) -> bool:
    """A transport failure, which the device coming back can mend."""
    return isinstance(error, TransportError) and not isinstance(error, CommandTimeoutError)


def final_error(errors: Sequence[HilbenchError]) -> str:
    """One line for a job that failed every attempt: the first error (the cause), and the
    last when it differs."""
    first, last = str(errors[0]), str(errors[-1])
    if len(errors) == 1:
        return first
    tail = "" if last == first else f", the last: {last}"
    return f"{first} ({len(errors)} attempts{tail})"
