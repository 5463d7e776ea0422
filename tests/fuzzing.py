"""What the fuzz tests (tests/test_fuzz_*.py) share: a Hypothesis profile that is
reproducible and bounded in CI, the count of cases run per target (printed at the end of
the session by tests/conftest.py), strategies for JSON and for mutations of a valid
document, and the check that an error is one of hilbench's with a one-line message.

    HILBENCH_FUZZ_PROFILE=hilbench-long HILBENCH_FUZZ_SCALE=20 pytest tests/test_fuzz_*.py

runs twenty times the cases with a random seed (the CI profile's seed is fixed; the damaged
model files of tests/test_fuzz_models.py come from HILBENCH_FUZZ_SEED, 9 by default)."""

from __future__ import annotations

import copy
import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from hilbench.core.errors import HilbenchError

CASES: Counter[str] = Counter()
MAX_MESSAGE = 1000

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
          HealthCheck.function_scoped_fixture]
settings.register_profile("hilbench-ci", derandomize=True, database=None, deadline=None,
                          print_blob=True, suppress_health_check=_QUIET)
settings.register_profile("hilbench-long", derandomize=False, deadline=None, print_blob=True,
                          suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HILBENCH_FUZZ_PROFILE", "hilbench-ci"))
SCALE = float(os.environ.get("HILBENCH_FUZZ_SCALE", "1"))


def examples(count: int) -> int:
    """``count`` cases in CI, scaled by HILBENCH_FUZZ_SCALE for a longer run."""
    return max(1, round(count * SCALE))


def ran(target: str) -> None:
    """One more case of ``target`` ran."""
    CASES[target] += 1


def summary() -> list[str]:
    return [f"{target}: {count} cases" for target, count in sorted(CASES.items())]


def assert_clear(error: BaseException) -> None:
    """A hilbench error whose message is one line (what the CLI prints, what the
    coordinator stores as a failed run's error)."""
    assert isinstance(error, HilbenchError), repr(error)
    message = str(error)
    assert message.strip(), f"{type(error).__name__} without a message"
    assert len(message.splitlines()) == 1 and "\r" not in message, repr(message)
    assert len(message) <= MAX_MESSAGE, f"{len(message)} characters: {message[:200]}..."


EXTREMES: tuple[Any, ...] = (
    0, -1, 1, 2**31, 2**63, -(2**63) - 1, 2**64, 10**400, 1e308, -1e308, 1e-320, -0.0,
    float("nan"), float("inf"), float("-inf"), True, False, None, "", "0", "1e999", "nan",
    "\n", "x\ny", "\x00", "é" * 3, [], {}, [None], {"": None}, [[[[]]]],
)

extremes = st.sampled_from(EXTREMES).map(copy.deepcopy)  # fresh lists: mutations change them
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=20) | extremes)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=16,
)


def _slots(document: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of a decoded JSON document, depth first."""
    slots: list[tuple[Any, Any]] = []
    stack = [document]
    while stack:
        node = stack.pop()
        keys: list[Any] = (list(node) if isinstance(node, dict)
                           else list(range(len(node))) if isinstance(node, list) else [])
        for key in keys:
            slots.append((node, key))
            stack.append(node[key])
    return slots


@st.composite
def mutated(draw: st.DrawFn, document: Any, keys: tuple[str, ...] = ()) -> Any:
    """``document`` with one to four mutations: a value replaced (by another JSON value, an
    extreme number, a string), a key deleted, a key added (``keys``: names that matter)."""
    copied = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(copied)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(("replace", "extreme", "delete", "add")))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "extreme":
            container[key] = draw(extremes)
        elif action == "delete" and isinstance(container, dict):
            del container[key]
        elif action == "delete":
            container.pop(key)
        elif isinstance(container, dict):
            name = draw(st.sampled_from(keys) if keys else st.text(max_size=8))
            container[name] = draw(json_values)
        else:
            container.insert(key, draw(json_values))
    return copied


EDGE_NUMBERS = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 1e308, -1e308, 1e-320,
                -0.0, 0.5, float("nan"), float("inf"))
NUMBERS = st.sampled_from(EDGE_NUMBERS) | st.integers() | st.floats()


@st.composite
def renumbered(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one to three of its numbers changed (to 0, negatives, the edges of
    64 bits and of floats, NaN...): mostly still well-formed, so it goes further in."""
    copied = copy.deepcopy(document)
    slots = [(container, key) for container, key in _slots(copied)
             if isinstance(container[key], (int, float)) and not isinstance(container[key], bool)]
    for _ in range(draw(st.integers(1, 3)) if slots else 0):
        container, key = draw(st.sampled_from(slots))
        container[key] = draw(NUMBERS)
    return copied


TOKENS = ("@@file /sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq", "@@section tool",
          "@@section trace", "@@tool-exit 0", "@@hilbench-sh-agent 3", "@@error x",
          "@@idle-start 1e999", "@@file /../../etc/passwd", "@@file /a", "@@file /a/b",
          "count=", "avg=", "Average inference time cost: ", "0", "-1", "1e999", "nan",
          "99999999999999999999999", "1.5 %", "2 bytes", "\x00", "é", "\t", " ", "")


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    """``text`` with one to four edits: lines deleted, doubled, swapped or inserted (random
    text, or tokens its parsers look for), numbers changed, characters flipped, or the
    text cut short."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        action = draw(st.sampled_from(("delete", "double", "swap", "insert", "token", "number",
                                       "flip", "cut")))
        if not lines:
            lines = [""]
        if action == "delete":
            del lines[at]
        elif action == "double":
            lines.insert(at, lines[at])
        elif action == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif action == "insert":
            lines.insert(at, draw(st.text(max_size=40)))
        elif action == "token":
            lines[at] = draw(st.sampled_from(TOKENS)) + draw(st.sampled_from(TOKENS))
        elif action == "number":
            line = lines[at]
            digits = [i for i, c in enumerate(line) if c.isdigit()]
            if digits:
                i = draw(st.sampled_from(digits))
                lines[at] = line[:i] + draw(st.sampled_from(TOKENS[13:20])) + line[i + 1:]
        elif action == "flip" and lines[at]:
            i = draw(st.integers(0, len(lines[at]) - 1))
            lines[at] = lines[at][:i] + draw(st.characters()) + lines[at][i + 1:]
        elif action == "cut":
            joined = "\n".join(lines)
            lines = joined[:draw(st.integers(0, len(joined)))].split("\n")
    return "\n".join(lines)
