"""The fixed reference set: small networks every device measures once (``bench predictor
calibrate``) so that the cross-device model can describe it (its hardware embedding).

Eight networks of the public search spaces, chosen for what they exercise rather than only
for their cost: six NAS-Bench-201 cells (3x3 convolutions, 1x1 convolutions, average
pooling, and mixes of them with skips and zero edges) and two FBNet networks (depthwise and
grouped convolutions, channel shuffles, skips, a 1504-channel head), the 10th and 90th
percentile of pixel3's latency among the FBNet table's networks. All eight are in the public
tables (NAS-Bench-201's holds every cell), so a replay device that imported both tables
whole has measured the reference set too. On this project's 2-vCPU machine each takes 1 to
20 ms on onnxruntime.

A reference is identified by its *source* (``nb201:<cell>``, ``fbnet:<arch>``): its ONNX file
is that network built again (deterministic bytes: the spaces' generators are seeded), written
once into a cache folder; a replay device whose table holds the same network (a model of
format ``space`` with that source) measured the reference too. Changing the set or how its
files are built means bumping ``REFERENCE_SET_VERSION``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from hilbench.core.files import write_atomically

REFERENCE_SET_VERSION = 1
REFERENCE_BATCH = 1
_SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Reference:
    """One reference network: its file name (without ``.onnx``) and its space source."""

    name: str
    source: str


def _cell(*nodes: tuple[str, ...]) -> str:
    return "+".join("|" + "|".join(f"{op}~{i}" for i, op in enumerate(node)) + "|"
                    for node in nodes)


def _uniform(op: str) -> str:
    return _cell((op,), (op, op), (op, op, op))


REFERENCES: tuple[Reference, ...] = (
    Reference("ref-nb201-conv3x3", "nb201:" + _uniform("nor_conv_3x3")),
    Reference("ref-nb201-conv1x1", "nb201:" + _uniform("nor_conv_1x1")),
    Reference("ref-nb201-pool", "nb201:" + _uniform("avg_pool_3x3")),
    Reference("ref-nb201-mix-a", "nb201:" + _cell(
        ("nor_conv_3x3",), ("skip_connect", "nor_conv_1x1"),
        ("avg_pool_3x3", "none", "nor_conv_3x3"))),
    Reference("ref-nb201-mix-b", "nb201:" + _cell(
        ("nor_conv_1x1",), ("skip_connect", "avg_pool_3x3"),
        ("nor_conv_1x1", "skip_connect", "avg_pool_3x3"))),
    Reference("ref-nb201-mix-c", "nb201:" + _cell(
        ("nor_conv_3x3",), ("none", "skip_connect"), ("none", "none", "skip_connect"))),
    Reference("ref-fbnet-light", "fbnet:4-6-8-4-5-8-8-6-6-0-4-4-6-1-4-8-6-3-0-2-2-6"),
    Reference("ref-fbnet-heavy", "fbnet:3-8-8-7-7-3-2-2-0-3-5-1-4-8-1-6-2-1-7-2-2-2"),
)
REFERENCE_SOURCES: tuple[str, ...] = tuple(r.source for r in REFERENCES)


def default_folder() -> Path:
    """Where the reference files are written: hilbench's cache folder."""
    return (Path(platformdirs.user_cache_dir("hilbench")) / "references"
            / f"v{REFERENCE_SET_VERSION}")


def build_bytes(reference: Reference) -> bytes:
    """The ONNX bytes of a reference network (deterministic)."""
    from hilbench.predictor.spaces import fbnet, nb201
    from hilbench.predictor.spaces.registry import parse_source

    space, arch = parse_source(reference.source)
    model = nb201.build(arch) if space == "nb201" else fbnet.build(arch)
    data: bytes = model.SerializeToString()
    return data


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def reference_files(folder: Path | None = None) -> dict[Reference, Path]:
    """The reference ONNX files, written once into ``folder`` (default: the cache folder);
    a file whose bytes no longer match the checksums written beside it is built again."""
    target = folder or default_folder()
    target.mkdir(parents=True, exist_ok=True)
    sums_path = target / _SUMS
    sums: dict[str, str] = {}
    if sums_path.exists():
        for line in sums_path.read_text().splitlines():
            digest, _, name = line.partition("  ")
            if name:
                sums[name] = digest
    files: dict[Reference, Path] = {}
    changed = False
    for reference in REFERENCES:
        path = target / f"{reference.name}.onnx"
        if sums.get(path.name) is None or _digest(path) != sums[path.name]:
            data = build_bytes(reference)
            write_atomically(path, data)
            sums[path.name] = hashlib.sha256(data).hexdigest()
            changed = True
        files[reference] = path
    if changed:
        lines = "".join(f"{d}  {n}\n" for n, d in sorted(sums.items()))
        write_atomically(sums_path, lines.encode())
    return files


def reference_sha256s(folder: Path | None = None) -> dict[str, str]:
    """sha256 of each reference file written on this machine -> its source (empty before
    any was written: training also knows the references by name and by source)."""
    sums_path = (folder or default_folder()) / _SUMS
    by_name = {r.name + ".onnx": r.source for r in REFERENCES}
    found: dict[str, str] = {}
    try:
        text = sums_path.read_text()
    except OSError:
        return found
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name in by_name:
            found[digest] = by_name[name]
    return found
