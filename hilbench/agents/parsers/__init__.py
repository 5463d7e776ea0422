"""Pure parsers of what devices' own benchmark tools print. Text in, a report out."""

from hilbench.agents.parsers.ort_perf import parse_onnxruntime_perf_test
from hilbench.agents.parsers.report import ToolReport
from hilbench.agents.parsers.tflite import parse_benchmark_model

__all__ = ["ToolReport", "parse_benchmark_model", "parse_onnxruntime_perf_test"]
