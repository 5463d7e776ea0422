"""Fuzzing model loading: the shipped models truncated, bit-flipped, overwritten with zeros
or random bytes, spliced, and pure random bytes, loaded the way hilbench loads a model
(its record, the predictor's reader, the agent's runner: load, inputs, one inference). Each
gives a model or a ModelError (a hilbench error) with a one-line message. The loaders run
in a child process (tests/model_loading.py): a native crash there is found, reported with
the file that caused it, and the next files still run."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.fuzzing import examples, ran

ASSETS = Path(__file__).parents[1] / "hilbench/assets"
# fixed: the same files in every run (HILBENCH_FUZZ_SEED and HILBENCH_FUZZ_SCALE for others)
SEED = int(os.environ.get("HILBENCH_FUZZ_SEED", "9"))
Mutation = Callable[[random.Random, bytes], bytes]


def _truncated(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(len(data))]


def _bit_flips(rng: random.Random, data: bytes) -> bytes:
    damaged = bytearray(data)
    # the headers, offsets and shapes live near the start (ONNX graph, flatbuffer tables)
    span = len(data) if rng.random() < 0.5 else min(len(data), 4096)
    for _ in range(rng.randint(1, 16)):
        damaged[rng.randrange(span)] ^= 1 << rng.randrange(8)
    return bytes(damaged)


def _zeroed(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    length = rng.randint(1, 256)
    return data[:start] + bytes(min(length, len(data) - start)) + data[start + length:]


def _random_run(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + rng.randbytes(rng.randint(1, 64)) + data[start + 64:]


def _spliced(rng: random.Random, data: bytes) -> bytes:
    start, other = rng.randrange(len(data)), rng.randrange(len(data))
    return data[:start] + data[other:other + rng.randint(1, 1024)] + data[start:]


def _random(rng: random.Random, data: bytes) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 7, 64, 1024, 65536]))


MUTATIONS: dict[str, Mutation] = {
    "truncated": _truncated, "bit-flipped": _bit_flips, "zeroed": _zeroed,
    "random run": _random_run, "spliced": _spliced, "random bytes": _random,
}
# (model, cases): the small transformer and the TFLite MLP get the most, the 4 MB BERT a few
MODELS = {"digits-transformer.onnx": 45, "tiny-mlp.tflite": 45, "tiny-bert.onnx": 10}


def damaged_models(folder: Path) -> list[tuple[Path, str]]:
    rng = random.Random(SEED)
    made = []
    for name, count in MODELS.items():
        data = (ASSETS / name).read_bytes()
        for index in range(examples(count)):
            mutation = list(MUTATIONS)[index % len(MUTATIONS)]
            path = folder / f"{index:03d}-{mutation.replace(' ', '-')}-{name}"
            path.write_bytes(MUTATIONS[mutation](rng, data))
            made.append((path, f"{name} {mutation}"))
    return made


def load_all(paths: list[Path], folder: Path) -> tuple[list[dict[str, object]], list[str]]:
    """Every file through tests/model_loading.py: the outcomes, and the files whose loading
    took the child process down (a new child goes on with the next file)."""
    outcomes: list[dict[str, object]] = []
    crashes: list[str] = []
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache"), "OMP_NUM_THREADS": "1"}
    remaining = list(paths)
    while remaining:
        done = subprocess.run([sys.executable, "-m", "tests.model_loading",
                               *map(str, remaining)], capture_output=True, text=True,
                              timeout=300, env=env, cwd=Path(__file__).parents[1], check=False)
        started = -1
        for line in done.stdout.splitlines():
            if line.startswith("start "):
                started = int(line.split()[1])
            elif line.startswith("{"):
                outcomes.append({**json.loads(line), "file": remaining[started].name})
        if done.returncode == 0:
            break
        crashes.append(f"{remaining[max(started, 0)].name}: exit {done.returncode}, "
                       f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        remaining = remaining[max(started, 0) + 1:]
    return outcomes, crashes


def test_damaged_models_give_a_model_error_or_load(tmp_path: Path) -> None:
    made = damaged_models(tmp_path)
    outcomes, crashes = load_all([path for path, _ in made], tmp_path)
    kinds = {path.name: kind for path, kind in made}
    for outcome in outcomes:
        ran(f"model loading: {outcome['loader']}")
    print(f"\n{len(made)} damaged model files, {len(outcomes)} loads: "
          + ", ".join(f"{k} {sum(o['outcome'] == k for o in outcomes)}"
                      for k in ("ok", "clear", "unclear")))
    unclear = [f"{o['file']} ({kinds[str(o['file'])]}) via {o['loader']}: {o['error']}"
               for o in outcomes if o["outcome"] != "ok" and o["outcome"] != "clear"]
    assert not crashes, "native crashes:\n" + "\n".join(crashes)
    assert not unclear, "\n".join(unclear)
    assert len(outcomes) == 3 * len(made)
