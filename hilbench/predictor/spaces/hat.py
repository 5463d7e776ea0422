"""HAT (Hardware-Aware Transformers) WMT14 en-de SubTransformers as ONNX graphs.

Follows mit-han-lab/hardware-aware-transformers (``fairseq/models/transformer_super.py``,
``fairseq/modules/multihead_attention_super.py``, ``latency_dataset.py``) for
``transformersuper_wmt_en_de``: post-LayerNorm layers, ReLU FFN, sinusoidal positions (the
640-wide super table, first ``embed_dim`` columns, positions from padding_idx + 1 = 2), tokens
scaled by sqrt(embed_dim), one embedding table shared by encoder, decoder and output projection,
and q/k/v projected to a fixed ``qkv_dim`` = 512 whatever the head count (head_dim = 512 /
heads). Decoder layer i attends to the concatenation (along time) of the last 1, 2 or 3 encoder
layers' outputs (HAT's arbitrary encoder-decoder attention).

What HAT timed (``latency_dataset.py``): the encoder once on 1 sentence of 30 tokens (WMT), and
the decoder as 30 incremental steps with beam 5 (fairseq's default), each step feeding the last
token only, with cached self-attention keys/values and encoder-decoder keys/values projected
once, at the first step. So a configuration is three graphs, as ONNX seq2seq exporters split it:

* ``encoder``: ``src_tokens`` [batch, source] -> ``encoder_out`` (+ earlier layers' outputs that
  a decoder layer attends to, ``encoder_state_2`` / ``encoder_state_3``);
* ``decoder_first``: step 0; ``prev_token`` [beam, 1] and the encoder outputs -> ``logits``
  [beam, vocab], ``present_key_i`` / ``present_value_i`` and ``cross_key_i`` / ``cross_value_i``;
* ``decoder_next``: steps 1..target-1; takes ``past_key_i`` / ``past_value_i`` [beam, heads,
  past, head_dim] and the cross keys/values [beam, heads, memoryN, head_dim], memoryN = N x
  source for a layer attending to N encoder layers.

HAT's decoder latency = decoder_first + sum over past = 1..target-1 of decoder_next (see
``HatGraphs.runs``). The vocabulary defaults to 32,768 (the size of the BPE-32k joined WMT16
en-de dictionary HAT trained on, not verified here): it sets the output projection, a large part
of a small decoder's cost, so keep it for latency work; tests pass a small one.

The public latency table keeps only per-layer averages; ``HatConfig.from_features`` rebuilds
per-layer lists with the same sums (FFN widths, attended-layer counts) from the sampling space,
which is what FLOPs and weight bytes depend on; the order of layers is not recoverable.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy
import onnx

from hilbench.core.errors import ModelError
from hilbench.predictor.spaces._graph import GraphBuilder, float_input, int64_input

SEED = 2020
QKV_DIM = 512
SUPER_EMBED_DIM = 640
VOCAB_SIZE = 32768
MAX_POSITIONS = 1024
POSITION_OFFSET = 2  # fairseq: padding_idx (1) + 1
SOURCE_LENGTH = 30  # HAT latency_dataset.py: dummy sentence length for WMT
TARGET_LENGTH = 30  # decoder_iterations for WMT
BEAM = 5  # fairseq --beam default

# The latency-dataset sampling space (configs/wmt14.en-de/latency_dataset/*.yml).
EMBED_CHOICES = (640, 512)
FFN_CHOICES = (3072, 2048, 1024, 512)
HEAD_CHOICES = (8, 4, 2)
ENDE_LAYER_CHOICES = (3, 2, 1)  # arbitrary-ende-attn 2, 1, -1 -> attend to 3, 2, 1 layers


@dataclass(frozen=True)
class HatConfig:
    """One SubTransformer: per-layer lists have one entry per layer."""

    encoder_embed_dim: int
    encoder_ffn_dims: tuple[int, ...]
    encoder_heads: tuple[int, ...]
    decoder_embed_dim: int
    decoder_ffn_dims: tuple[int, ...]
    decoder_self_heads: tuple[int, ...]
    decoder_ende_heads: tuple[int, ...]
    decoder_ende_layers: tuple[int, ...]
    vocab_size: int = VOCAB_SIZE

    def __post_init__(self) -> None:
        enc, dec = len(self.encoder_ffn_dims), len(self.decoder_ffn_dims)
        if enc < 1 or dec < 1 or len(self.encoder_heads) != enc or any(
                len(t) != dec for t in (self.decoder_self_heads, self.decoder_ende_heads,
                                        self.decoder_ende_layers)):
            raise ModelError(f"HAT config {self}: per-layer lists disagree on the layer count")
        heads = self.encoder_heads + self.decoder_self_heads + self.decoder_ende_heads
        if any(h < 1 or QKV_DIM % h for h in heads):
            raise ModelError(f"HAT config: head counts {heads} must divide {QKV_DIM}")
        if any(not 1 <= n <= min(3, enc) for n in self.decoder_ende_layers):
            raise ModelError(f"HAT config: attended encoder layers {self.decoder_ende_layers} "
                             f"must be 1..{min(3, enc)}")

    @property
    def encoder_layers(self) -> int:
        return len(self.encoder_ffn_dims)

    @property
    def decoder_layers(self) -> int:
        return len(self.decoder_ffn_dims)

    @classmethod
    def from_features(cls, encoder_embed_dim: float, encoder_layer_num: float,
                      encoder_ffn_embed_dim_avg: float, encoder_self_attention_heads_avg: float,
                      decoder_embed_dim: float, decoder_layer_num: float,
                      decoder_ffn_embed_dim_avg: float, decoder_self_attention_heads_avg: float,
                      decoder_ende_attention_heads_avg: float,
                      decoder_arbitrary_ende_attn_avg: float,
                      vocab_size: int = VOCAB_SIZE) -> HatConfig:
        """From HAT's 10 features (the CSV columns, same names). Averages are turned back
        into per-layer lists with the same sum, largest values first."""
        enc, dec = int(encoder_layer_num), int(decoder_layer_num)
        return cls(
            encoder_embed_dim=int(encoder_embed_dim),
            encoder_ffn_dims=split_sum(encoder_ffn_embed_dim_avg, enc, FFN_CHOICES),
            encoder_heads=split_sum(encoder_self_attention_heads_avg, enc, HEAD_CHOICES),
            decoder_embed_dim=int(decoder_embed_dim),
            decoder_ffn_dims=split_sum(decoder_ffn_embed_dim_avg, dec, FFN_CHOICES),
            decoder_self_heads=split_sum(decoder_self_attention_heads_avg, dec, HEAD_CHOICES),
            decoder_ende_heads=split_sum(decoder_ende_attention_heads_avg, dec, HEAD_CHOICES),
            decoder_ende_layers=split_sum(decoder_arbitrary_ende_attn_avg, dec,
                                          ENDE_LAYER_CHOICES),
            vocab_size=vocab_size,
        )


def split_sum(average: float, count: int, choices: tuple[int, ...]) -> tuple[int, ...]:
    """``count`` values from ``choices`` whose mean is ``average``: the lexicographically
    largest such list (descending). Raises ModelError when none exists."""
    total = round(average * count)
    ordered = tuple(sorted(choices, reverse=True))
    values: list[int] = []
    for left in range(count, 0, -1):
        pick = next((c for c in ordered if _reachable(total - c, left - 1, ordered)), None)
        if pick is None:
            raise ModelError(f"HAT feature average {average} over {count} layers is not "
                             f"reachable with choices {choices}")
        values.append(pick)
        total -= pick
    return tuple(values)


@functools.lru_cache(maxsize=4096)
def _reachable(total: int, count: int, choices: tuple[int, ...]) -> bool:
    if count == 0:
        return total == 0
    return any(_reachable(total - c, count - 1, choices) for c in choices if c <= total)


@dataclass(frozen=True)
class HatGraphs:
    """The three graphs of one configuration and the runs that make HAT's latency."""

    encoder: onnx.ModelProto
    decoder_first: onnx.ModelProto
    decoder_next: onnx.ModelProto
    source_length: int
    target_length: int
    beam: int

    def runs(self) -> tuple[tuple[str, dict[str, int]], ...]:
        """(graph name, symbolic dims) per run, in HAT's order: the encoder, then each
        decoder step; encoder latency is the first, decoder latency the sum of the others."""
        first = [("encoder", {"batch": 1, "source": self.source_length}),
                 ("decoder_first", {"beam": self.beam, "source": self.source_length})]
        return tuple(first + [("decoder_next", {"beam": self.beam, "past": past,
                                                **memory_dims(self.source_length)})
                              for past in range(1, self.target_length)])


def build(cfg: HatConfig, source_length: int = SOURCE_LENGTH,
          target_length: int = TARGET_LENGTH, beam: int = BEAM,
          weights: bool = True) -> HatGraphs:
    """All three graphs of ``cfg``; the lengths and beam only set default dims and runs.
    ``weights=False``: graphs for features only, their random weights without values
    (``GraphBuilder``): a large configuration's graphs in milliseconds instead of a second."""
    if min(source_length, target_length, beam) < 1 or max(source_length,
                                                         target_length) > MAX_POSITIONS:
        raise ModelError(f"HAT lengths must be 1..{MAX_POSITIONS} and beam >= 1")
    return HatGraphs(build_encoder(cfg, source_length, weights),
                     build_decoder_step(cfg, True, source_length, target_length, beam, weights),
                     build_decoder_step(cfg, False, source_length, target_length, beam, weights),
                     source_length, target_length, beam)


def memory_dims(source_length: int) -> dict[str, int]:
    return {f"memory{n}": n * source_length for n in (1, 2, 3)}


# -- shared pieces ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=len(EMBED_CHOICES))
def sinusoidal_table(width: int) -> numpy.ndarray:
    """fairseq's sinusoidal table for the 640-wide super model, first ``width`` columns
    (computed once per width; read-only)."""
    half = SUPER_EMBED_DIM // 2
    rate = numpy.exp(numpy.arange(half, dtype=numpy.float64) * -(math.log(10000) / (half - 1)))
    angles = numpy.arange(MAX_POSITIONS + POSITION_OFFSET, dtype=numpy.float64)[:, None] * rate
    table = numpy.concatenate([numpy.sin(angles), numpy.cos(angles)], axis=1)
    table[POSITION_OFFSET - 1, :] = 0.0
    columns = numpy.ascontiguousarray(table[:, :width], dtype=numpy.float32)
    columns.flags.writeable = False
    return columns


def embed(g: GraphBuilder, tokens: str, positions: str, width: int, vocab: int) -> str:
    """sqrt(width) * token embedding + sinusoidal position embedding."""
    table = g.weight("embed_tokens.weight", (vocab, width), fan_in=width)
    words = g.node("Gather", [table, tokens], "embed/words")
    scaled = g.node("Mul", [words, g.scalar("embed/scale", math.sqrt(width))], "embed/scaled")
    pos_table = g.constant("embed_positions/table", sinusoidal_table(width))
    return g.node("Add", [scaled, g.node("Gather", [pos_table, positions], "embed/positions")],
                  "embed/out")


def heads_of(g: GraphBuilder, prefix: str, x: str, in_dim: int, heads: int) -> str:
    """Project [B, T, in_dim] to qkv_dim and split into heads: [B, heads, T, head_dim]."""
    projected = g.dense(prefix, x, (in_dim, QKV_DIM))
    shape = g.ints(f"{prefix}/split_shape", [0, 0, heads, QKV_DIM // heads])
    split = g.node("Reshape", [projected, shape], f"{prefix}/split")
    return g.node("Transpose", [split], f"{prefix}/heads", perm=[0, 2, 1, 3])


def attend(g: GraphBuilder, prefix: str, q: str, k: str, v: str, heads: int,
           out_dim: int) -> str:
    """Scaled dot-product attention over [B, h, T, d] tensors, heads merged and projected."""
    scaled = g.node("Mul", [q, g.scalar(f"{prefix}/scaling", (QKV_DIM // heads) ** -0.5)],
                    f"{prefix}/q_scaled")
    keys_t = g.node("Transpose", [k], f"{prefix}/keys_t", perm=[0, 1, 3, 2])
    scores = g.node("MatMul", [scaled, keys_t], f"{prefix}/scores")
    probs = g.node("Softmax", [scores], f"{prefix}/probs", axis=-1)
    context = g.node("MatMul", [probs, v], f"{prefix}/context")
    merged = g.node("Reshape", [g.node("Transpose", [context], f"{prefix}/context_t",
                                       perm=[0, 2, 1, 3]),
                                g.ints(f"{prefix}/merge_shape", [0, 0, QKV_DIM])],
                    f"{prefix}/merged")
    return g.dense(f"{prefix}.out_proj", merged, (QKV_DIM, out_dim))


def residual_norm(g: GraphBuilder, prefix: str, x: str, residual: str, width: int) -> str:
    """Post-norm: LayerNorm(residual + x)."""
    return g.layer_norm(prefix, g.node("Add", [x, residual], f"{prefix}/residual"), width)


def feed_forward(g: GraphBuilder, prefix: str, x: str, width: int, ffn: int) -> str:
    hidden = g.node("Relu", [g.dense(f"{prefix}.fc1", x, (width, ffn))], f"{prefix}/relu")
    out = g.dense(f"{prefix}.fc2", hidden, (ffn, width))
    return residual_norm(g, f"{prefix}.final_layer_norm", out, x, width)


# -- encoder ---------------------------------------------------------------------------------


def build_encoder(cfg: HatConfig, source_length: int = SOURCE_LENGTH,
                  weights: bool = True) -> onnx.ModelProto:
    """Encoder graph: ``src_tokens`` [batch, source] int64 -> ``encoder_out`` [batch, source,
    encoder_embed_dim] and ``encoder_state_N`` (the N-th last layer's output) for every N > 1 a
    decoder layer attends to. ``weights``: as in ``build``."""
    g = GraphBuilder(SEED, weights)
    width = cfg.encoder_embed_dim
    length = g.node("Gather", [g.node("Shape", ["src_tokens"], "embed/shape"),
                               g.constant("embed/one", numpy.array(1, numpy.int64))],
                    "embed/length", axis=0)
    start = g.constant("embed/start", numpy.array(POSITION_OFFSET, numpy.int64))
    stop = g.node("Add", [length, start], "embed/stop")
    positions = g.node("Range", [start, stop, g.constant("embed/step",
                                                         numpy.array(1, numpy.int64))],
                       "embed/position_ids")
    x = embed(g, "src_tokens", positions, width, cfg.vocab_size)
    states = []
    for i, (ffn, heads) in enumerate(zip(cfg.encoder_ffn_dims, cfg.encoder_heads, strict=True)):
        x = encoder_layer(g, f"encoder.layers.{i}", x, width, ffn, heads)
        states.append(x)
    outputs = [float_input("encoder_out", ["batch", "source", width])]
    g.node("Identity", [x], "encoder_out")
    for n in range(2, max(cfg.decoder_ende_layers) + 1):
        g.node("Identity", [states[-n]], f"encoder_state_{n}")
        outputs.append(float_input(f"encoder_state_{n}", ["batch", "source", width]))
    return g.model("hat-encoder", [int64_input("src_tokens", ["batch", "source"])], outputs,
                   f"batch=1,source={source_length}")


def encoder_layer(g: GraphBuilder, prefix: str, x: str, width: int, ffn: int,
                  heads: int) -> str:
    q, k, v = (heads_of(g, f"{prefix}.self_attn.{n}_proj", x, width, heads) for n in "qkv")
    attended = attend(g, f"{prefix}.self_attn", q, k, v, heads, width)
    x = residual_norm(g, f"{prefix}.self_attn_layer_norm", attended, x, width)
    return feed_forward(g, prefix, x, width, ffn)


# -- decoder step ----------------------------------------------------------------------------


def build_decoder_step(cfg: HatConfig, first: bool, source_length: int = SOURCE_LENGTH,
                       target_length: int = TARGET_LENGTH, beam: int = BEAM,
                       weights: bool = True) -> onnx.ModelProto:
    """One incremental decoder step (``first``: step 0, which also projects the encoder
    outputs into each layer's cross keys/values; else a later step reading them and the past
    self-attention keys/values). ``weights``: as in ``build``."""
    g = GraphBuilder(SEED + 1, weights)
    width = cfg.decoder_embed_dim
    inputs = [int64_input("prev_token", ["beam", 1])]
    outputs = [float_input("logits", ["beam", cfg.vocab_size])]
    x = embed(g, "prev_token", step_position(g, first), width, cfg.vocab_size)
    for i in range(cfg.decoder_layers):
        x = decoder_layer(g, cfg, i, x, first, inputs, outputs)
    flat = g.node("Reshape", [x, g.ints("output/flat_shape", [-1, width])], "output/flat")
    g.node("Gemm", [flat, "embed_tokens.weight"], "logits", transB=1)
    if first:
        inputs += [float_input(n, ["beam", "source", cfg.encoder_embed_dim])
                   for n in encoder_output_names(cfg)]
        dims = f"beam={beam},source={source_length}"
    else:
        memory = ",".join(f"{k}={v}" for k, v in memory_dims(source_length).items())
        dims = f"beam={beam},past={target_length // 2},{memory}"
    return g.model("hat-decoder-first" if first else "hat-decoder-next", inputs, outputs, dims)


def encoder_output_names(cfg: HatConfig) -> list[str]:
    return ["encoder_out"] + [f"encoder_state_{n}"
                              for n in range(2, max(cfg.decoder_ende_layers) + 1)]


def step_position(g: GraphBuilder, first: bool) -> str:
    """Position id of this step: 2 at step 0, else 2 + the past length (of layer 0's cache)."""
    start = g.constant("embed/start", numpy.array([[POSITION_OFFSET]], numpy.int64))
    if first:
        return start
    past = g.node("Gather", [g.node("Shape", ["past_key_0"], "embed/past_shape"),
                             g.constant("embed/two", numpy.array(2, numpy.int64))],
                  "embed/past_length", axis=0)
    return g.node("Add", [start, past], "embed/position_ids")


def decoder_layer(g: GraphBuilder, cfg: HatConfig, i: int, x: str, first: bool,
                  inputs: list[onnx.ValueInfoProto],
                  outputs: list[onnx.ValueInfoProto]) -> str:
    """Self-attention (with cache), encoder-decoder attention, FFN; appends this layer's
    cache inputs and outputs to ``inputs`` / ``outputs``."""
    prefix, width = f"decoder.layers.{i}", cfg.decoder_embed_dim
    heads, head_dim = cfg.decoder_self_heads[i], QKV_DIM // cfg.decoder_self_heads[i]
    q, k, v = (heads_of(g, f"{prefix}.self_attn.{n}_proj", x, width, heads) for n in "qkv")
    if not first:
        inputs += [float_input(f"past_{n}_{i}", ["beam", heads, "past", head_dim])
                   for n in ("key", "value")]
        k = g.node("Concat", [f"past_key_{i}", k], f"{prefix}.self_attn/keys", axis=2)
        v = g.node("Concat", [f"past_value_{i}", v], f"{prefix}.self_attn/values", axis=2)
    g.node("Identity", [k], f"present_key_{i}")
    g.node("Identity", [v], f"present_value_{i}")
    outputs += [float_input(f"present_{n}_{i}", ["beam", heads, "present", head_dim])
                for n in ("key", "value")]
    attended = attend(g, f"{prefix}.self_attn", q, k, v, heads, width)
    x = residual_norm(g, f"{prefix}.self_attn_layer_norm", attended, x, width)
    x = cross_attention(g, cfg, i, x, first, inputs, outputs)
    return feed_forward(g, prefix, x, width, cfg.decoder_ffn_dims[i])


def cross_attention(g: GraphBuilder, cfg: HatConfig, i: int, x: str, first: bool,
                    inputs: list[onnx.ValueInfoProto],
                    outputs: list[onnx.ValueInfoProto]) -> str:
    prefix, width = f"decoder.layers.{i}.encoder_attn", cfg.decoder_embed_dim
    heads, attended = cfg.decoder_ende_heads[i], cfg.decoder_ende_layers[i]
    shape: list[int | str] = ["beam", heads, f"memory{attended}", QKV_DIM // heads]
    q = heads_of(g, f"{prefix}.q_proj", x, width, heads)
    key, value = f"cross_key_{i}", f"cross_value_{i}"
    if first:
        names = encoder_output_names(cfg)[:attended]
        memory = names[0] if attended == 1 else g.node("Concat", names, f"{prefix}/memory",
                                                       axis=1)
        for name, n in ((key, "k"), (value, "v")):
            g.node("Identity", [heads_of(g, f"{prefix}.{n}_proj", memory,
                                         cfg.encoder_embed_dim, heads)], name)
        outputs += [float_input(key, shape), float_input(value, shape)]
    else:
        inputs += [float_input(key, shape), float_input(value, shape)]
    out = attend(g, prefix, q, key, value, heads, width)
    return residual_norm(g, f"{prefix}_layer_norm", out, x, width)
