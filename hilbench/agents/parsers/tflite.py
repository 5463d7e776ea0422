"""TFLite ``benchmark_model`` output, old and new builds, plain, ``INFO:``-prefixed or from
logcat. Latencies in the tool's output are microseconds."""

from __future__ import annotations

import re

from hilbench.agents.parsers.report import (
    NUMBER,
    ToolOutputError,
    ToolReport,
    count,
    strip_log_prefix,
)

_PAIR = re.compile(rf"(\w+)=({NUMBER})")
_TIMINGS = re.compile(r"timings in us:\s*(.*)$")
_NAMED = re.compile(rf"([A-Za-z][A-Za-z ()]*?):\s*({NUMBER})")
_INIT_SESSION = re.compile(rf"Initialized session in ({NUMBER})\s*ms")
_THREADS = re.compile(r"^Num threads: \[(\d+)\]")
_PEAK_PATTERNS = (
    re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({NUMBER})"),
    re.compile(rf"Peak memory footprint \(MB\):.*overall=({NUMBER})"),
    re.compile(rf"Memory footprint delta from the start of the tool \(MB\):.*overall=({NUMBER})"),
)  # old builds' "[Init Phase] ... max resident set size" covers initialisation only: not used


def _count_lines(lines: list[str]) -> list[dict[str, float]]:
    blocks = [
        {key: float(value) for key, value in _PAIR.findall(line)}
        for line in lines
        if line.startswith("count=")
    ]
    return [block for block in blocks if "count" in block]


def _timings(lines: list[str]) -> dict[str, float]:
    named: dict[str, float] = {}
    for line in lines:
        match = _TIMINGS.search(line)
        if match:
            named.update({k.strip(): float(v) / 1000.0 for k, v in _NAMED.findall(match.group(1))})
    return named


def _peak_memory(lines: list[str]) -> float | None:
    for pattern in _PEAK_PATTERNS:  # most specific first
        for line in lines:
            match = pattern.search(line)
            if match:
                return float(match.group(1))
    return None


def _first_match(pattern: re.Pattern[str], lines: list[str]) -> str | None:
    for line in lines:
        match = pattern.search(line)
        if match:
            return match.group(1)
    return None


def _first_run_ms(block: dict[str, float]) -> float | None:
    """The first run of a count= block: ``first=``, or ``curr=`` when it ran once."""
    if "first" in block:
        return block["first"] / 1000.0
    if block.get("count") == 1 and "curr" in block:
        return block["curr"] / 1000.0
    return None


def parse_benchmark_model(text: str) -> ToolReport:
    """Parse one run of ``benchmark_model``; ``ToolOutputError`` if it holds no timings."""
    lines = [strip_log_prefix(line).strip() for line in text.splitlines()]
    counts = _count_lines(lines)
    timings = _timings(lines)
    if not counts and not timings:
        raise ToolOutputError("benchmark_model printed no timings (no count= line, no summary)")
    main = counts[-1] if counts else {}
    warmup = counts[0] if len(counts) > 1 else {}
    init = timings.get("Init")
    if init is None:
        session = _first_match(_INIT_SESSION, lines)
        init = float(session) if session is not None else None
    threads = _first_match(_THREADS, lines)

    def ms(key: str) -> float | None:
        return main[key] / 1000.0 if key in main else None

    return ToolReport(
        tool="benchmark_model",
        count=count(main.get("count", 0), "benchmark_model"),
        mean_ms=ms("avg") if "avg" in main else timings.get("Inference"),
        std_ms=ms("std"),
        min_ms=ms("min"),
        max_ms=ms("max"),
        p50_ms=ms("median"),
        first_ms=timings.get("First inference", _first_run_ms(warmup or main)),
        init_ms=init,
        warmup_mean_ms=timings.get("Warmup (avg)", timings.get("Warmup"))
        or (warmup["avg"] / 1000.0 if "avg" in warmup else None),
        peak_memory_mb=_peak_memory(lines),
        threads=int(threads) if threads is not None else None,
    )
