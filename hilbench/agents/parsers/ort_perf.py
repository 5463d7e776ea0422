"""``onnxruntime_perf_test`` output. Units vary by line (s, ms); old builds print
``Average inference time cost: X ms``."""

from __future__ import annotations

import re

from hilbench.agents.parsers.report import NUMBER, ToolOutputError, ToolReport, count, to_ms

_LINE = re.compile(rf"^\s*([A-Za-z][A-Za-z0-9 ]*?)\s*:\s*({NUMBER})\s*(s|ms|us|bytes|%)?\s*$")


def _fields(text: str) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        match = _LINE.match(line.rstrip("\r"))
        if match:
            found[match.group(1).lower()] = (match.group(2), match.group(3) or "")
    return found


def parse_onnxruntime_perf_test(text: str) -> ToolReport:
    """Parse one run of ``onnxruntime_perf_test``; ``ToolOutputError`` if no latency."""
    fields = _fields(text)

    def ms(*names: str) -> float | None:
        for name in names:
            if name in fields and fields[name][1] in ("", "s", "ms", "us"):  # a time, not a %
                value, unit = fields[name]
                return to_ms(value, unit or "ms")
        return None

    mean = ms("average inference time cost total", "average inference time cost")
    if mean is None:
        raise ToolOutputError("onnxruntime_perf_test printed no average inference time")
    peak = fields.get("peak working set size")
    return ToolReport(
        tool="onnxruntime_perf_test",
        count=count(fields["total inference requests"][0], "onnxruntime_perf_test")
        if "total inference requests" in fields
        else 0,
        mean_ms=mean,
        min_ms=ms("min latency"),
        max_ms=ms("max latency"),
        p50_ms=ms("p50 latency"),
        p90_ms=ms("p90 latency"),
        p99_ms=ms("p99 latency"),
        first_ms=ms("first inference time cost"),
        init_ms=ms("session creation time cost"),
        peak_memory_mb=float(peak[0]) / (1024 * 1024) if peak and peak[1] == "bytes" else None,
    )
