"""Networks of the public search spaces named by text, so they can be stored as models.

A *space source* is ``<space>:<arch>``: ``nb201:|nor_conv_3x3~0|+...``, ``fbnet:0-3-8-...``
(22 block choices) or ``hat:<the 10 HAT features, comma-separated, in HAT_FEATURES order>``.
Public tables measured these networks, not files anybody has: the profile store records them
as models of format ``space`` whose path is the source and whose sha256 is that of the source
text, and the predictor builds their graphs again from the source (``source_features``).
"""

from __future__ import annotations

import dataclasses
import hashlib

from hilbench.core.errors import ModelError
from hilbench.predictor.features import ModelFeatures, combine_features, extract_features
from hilbench.predictor.spaces import fbnet, hat, nb201

SPACES = ("nb201", "fbnet", "hat")
SPACE_FORMAT = "space"
HAT_FEATURE_COUNT = 10


def space_source(space: str, arch: str) -> str:
    """The source text of ``arch`` in ``space`` (checked: ModelError when malformed)."""
    source = f"{space}:{arch}"
    parse_source(source)
    return source


def source_sha256(source: str) -> str:
    """The identity of a space network in the store: sha256 of its source text."""
    return hashlib.sha256(source.encode()).hexdigest()


def parse_source(source: str) -> tuple[str, str]:
    """``(space, arch)``; ModelError for an unknown space or an architecture it rejects."""
    space, sep, arch = source.partition(":")
    if not sep or space not in SPACES:
        raise ModelError(f"space network {source[:60]!r}: expected <space>:<arch> with space "
                         f"one of {', '.join(SPACES)}")
    if space == "nb201":
        nb201.parse_cell(arch)
    elif space == "fbnet":
        fbnet.parse_arch(arch)
    else:
        hat_config(arch)
    return space, arch


def hat_config(arch: str) -> hat.HatConfig:
    """A HAT configuration from its 10 comma-separated features."""
    try:
        values = [float(v) for v in arch.split(",")]
    except ValueError as exc:
        raise ModelError(f"HAT configuration {arch[:60]!r}: features must be numbers") from exc
    if len(values) != HAT_FEATURE_COUNT:
        raise ModelError(f"HAT configuration {arch[:60]!r}: expected {HAT_FEATURE_COUNT} "
                         f"features, got {len(values)}")
    e_dim, e_layers, e_ffn, e_heads, d_dim, d_layers, d_ffn, d_heads, x_heads, x_layers = values
    return hat.HatConfig.from_features(e_dim, e_layers, e_ffn, e_heads, d_dim, d_layers, d_ffn,
                                       d_heads, x_heads, x_layers)


def hat_arch(features: tuple[float, ...]) -> str:
    """The arch text of a HAT configuration given as its 10 table features."""
    return ",".join(f"{v:.10g}" for v in features)


def source_features(source: str, batch: int = 1) -> ModelFeatures:
    """The features of a space network, from its graph built again."""
    space, arch = parse_source(source)
    if space == "nb201":
        return extract_features(nb201.build(arch), batch=batch)
    if space == "fbnet":
        return extract_features(fbnet.build(arch), batch=batch)
    return hat_features(hat_config(arch), source)


def hat_features(cfg: hat.HatConfig, source: str) -> ModelFeatures:
    """What HAT timed: the encoder once, the first decoder step, and the other steps (their
    attention grows with the past; all are taken at the middle length, where the sum of a
    linear cost is the same). The steps share the decoder's weights. The graphs are built
    without weight values (``hat.build(weights=False)``): the features are the same."""
    graphs = hat.build(cfg, weights=False)
    encoder_dims = {"batch": 1, "source": graphs.source_length}
    steps = graphs.target_length - 1
    middle = {"beam": graphs.beam, "past": max(1, (graphs.target_length) // 2),
              **hat.memory_dims(graphs.source_length)}
    encoder = extract_features(graphs.encoder, dims=encoder_dims)
    first = extract_features(graphs.decoder_first,
                             dims={"beam": graphs.beam, "source": graphs.source_length})
    parts = [(encoder, 1), (first, 1)]
    if steps:
        following = extract_features(graphs.decoder_next, dims=middle)
        parts.append((dataclasses.replace(following, params=0, param_bytes=0), steps))
    return combine_features(parts, source)
