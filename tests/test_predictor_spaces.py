"""Search-space graph generators (NAS-Bench-201, FBNet, HAT) and the public latency loaders."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy
import onnx
import onnxruntime
import pandas
import pytest

from hilbench.core.errors import DatasetError, ModelError
from hilbench.predictor.features import extract_features, model_vector
from hilbench.predictor.spaces import fbnet, hat, nb201, public
from hilbench.predictor.spaces._graph import POOL_SIZE, GraphBuilder, parameter_count

ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+" \
            "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+" \
           "|skip_connect~0|skip_connect~1|skip_connect~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
README_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+" \
              "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
NODE2_ZERO = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
DATA = public.data_root()
needs_data = pytest.mark.skipif(not (DATA / public.NB201_FILE).is_file(),
                                reason=f"public latency data not found at {DATA}")


def session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def run_image_net(model: onnx.ModelProto, batch: int = 2) -> numpy.ndarray:
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    image = numpy.random.default_rng(0).standard_normal((batch, 3, 32, 32)).astype(numpy.float32)
    out = session(model).run(["logits"], {"input": image})[0]
    assert numpy.isfinite(out).all()
    return numpy.asarray(out)


# -- NAS-Bench-201 ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", [ALL_CONV3, ALL_SKIP, ALL_NONE, README_CELL, NODE2_ZERO])
def test_nb201_graph_is_valid_and_runs(arch: str) -> None:
    assert run_image_net(nb201.build(arch)).shape == (2, 10)


def test_nb201_parameter_counts_match_nas_bench_201() -> None:
    """NAS-Bench-201 reports 1.531546 MB of parameters for the all-nor_conv_3x3 CIFAR-10 net
    (the largest) and 0.073306 MB for cells without parameters (stem, reductions, head)."""
    assert parameter_count(nb201.build(ALL_CONV3)) == 1_531_546
    assert parameter_count(nb201.build(ALL_SKIP)) == 73_306
    assert parameter_count(nb201.build(ALL_CONV3, num_classes=100)) == 1_531_546 + 90 * 65


def test_nb201_zero_node_and_dead_edges() -> None:
    # all-none cells: each cell output is its input times 0, the logits are the bias (0).
    assert numpy.allclose(run_image_net(nb201.build(ALL_NONE)), 0.0)
    # node 2 is zero: its avg_pool edge into node 3 stays; node 1 only feeds 'none' edges and
    # the nor_conv_1x1 on node 1 into node 3, so it is live.
    cell = nb201.parse_cell(NODE2_ZERO)
    assert cell.live_nodes() == {0, 1, 2, 3}
    assert str(cell) == NODE2_ZERO
    dead = nb201.parse_cell("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert dead.live_nodes() == {0, 3}


def test_nb201_dead_edges_are_built_and_counted_apart() -> None:
    """PyTorch runs every edge of a cell, also those whose node never reaches the output; the
    graph keeps them (NB201 counts their parameters) and the features tell them apart."""
    dead_cell = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    model = nb201.build(dead_cell)
    features = extract_features(model)
    # node 1's conv3x3 feeds only 'none' edges: 15 dead ReLU-Conv-BN kernels of 16..64 ch.
    dead_convs = [k for k in features.kernels if not k.live and k.family == "conv"]
    assert len(dead_convs) == 15
    assert features.dead_flops >= sum(k.flops for k in dead_convs) > 0
    live_convs = [k for k in features.kernels if k.live and k.family == "conv"]
    assert len(live_convs) == 1 + 2 * 3  # the stem and each reduction's three convs
    # the dead convs' weights are in the graph (NB201's count): conv 3x3 weights + BN per cell
    assert parameter_count(model) == 73_306 + 5 * sum(c * c * 9 + 2 * c for c in (16, 32, 64))
    assert features.params < 80_000  # only the live weights (a graph runtime drops the rest)


@pytest.mark.parametrize("bad", [
    "", "|nor_conv_3x3~0|", "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|",
    README_CELL.replace("avg_pool_3x3", "max_pool_3x3"), README_CELL.replace("~1|+", "~0|+"),
    README_CELL.replace("|+|skip", "+|skip"), README_CELL.replace("~2", "~x"),
])
def test_nb201_malformed_cell_is_a_model_error(bad: str) -> None:
    with pytest.raises(ModelError, match="NAS-Bench-201 cell"):
        nb201.build(bad)


def test_nb201_conv_net_is_slower_than_skip_net() -> None:
    def fastest(model: onnx.ModelProto) -> float:
        s, feed = session(model), {"input": numpy.ones((1, 3, 32, 32), numpy.float32)}
        s.run(None, feed)
        times = []
        for _ in range(7):
            start = time.perf_counter()
            s.run(None, feed)
            times.append(time.perf_counter() - start)
        return min(times)

    assert fastest(nb201.build(ALL_CONV3)) > 2 * fastest(nb201.build(ALL_SKIP))


# -- FBNet -----------------------------------------------------------------------------------


def expected_fbnet_params(choices: tuple[int, ...], classes: int = 100) -> int:
    """Parameters of HW-NAS-Bench's FBNet_Infer (CIFAR), counted from its module definitions:
    convs without bias, BatchNorm weight + bias, Linear with bias."""
    total = 3 * 16 * 9 + 2 * 16 + 352 * 1504 + 2 * 1504 + 1504 * classes + classes
    for choice, layer in zip(choices, fbnet.macro_layers(), strict=True):
        cin, cout = layer.cin, layer.cout
        if choice == 8:
            if layer.stride != 1 or cin != cout:
                total += cin * cout + 2 * cout
            continue
        kernel, expansion, groups = [(3, 1, 1), (3, 1, 2), (3, 3, 1), (3, 6, 1), (5, 1, 1),
                                     (5, 1, 2), (5, 3, 1), (5, 6, 1)][choice]
        mid = cin * expansion
        total += cin * mid // groups + 2 * mid + mid * kernel * kernel + 2 * mid
        total += mid * cout // groups + 2 * cout
    return total


FBNET_ARCHS = ["7-8-1-8-4-8-8-8-7-4-1-4-7-3-2-7-3-2-4-2-4-5", "-".join(["8"] * 22),
               "-".join(["7"] * 22), "-".join(["1"] * 22), "-".join(["5"] * 22)]


@pytest.mark.parametrize("arch", FBNET_ARCHS)
def test_fbnet_graph_is_valid_runs_and_counts_like_hw_nas_bench(arch: str) -> None:
    model = fbnet.build(arch)
    assert run_image_net(model).shape == (2, 100)
    assert parameter_count(model) == expected_fbnet_params(fbnet.parse_arch(arch))


def test_fbnet_macro_structure_and_skip_net() -> None:
    layers = fbnet.macro_layers()
    assert len(layers) == 22 and layers[0] == fbnet.Layer(16, 16, 1)
    assert [i for i, layer in enumerate(layers) if layer.stride == 2] == [5, 9, 17]
    assert layers[-1] == fbnet.Layer(184, 352, 1)
    assert [b.name for b in fbnet.BLOCKS] == ["k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1",
                                              "k5_e1_g2", "k5_e3", "k5_e6", "skip"]
    assert parameter_count(fbnet.build("-".join(["8"] * 22))) == 780_660
    ops = {n.op_type for n in fbnet.build("-".join(["1"] * 22)).graph.node}
    assert {"Reshape", "Transpose"} <= ops  # channel shuffle of the g=2 blocks


@pytest.mark.parametrize("bad", ["1-2-3", "-".join(["9"] * 22), "-".join(["a"] * 22), ""])
def test_fbnet_malformed_arch_is_a_model_error(bad: str) -> None:
    with pytest.raises(ModelError, match="FBNet arch"):
        fbnet.build(bad)


def test_generators_are_deterministic() -> None:
    assert nb201.build(README_CELL).SerializeToString() == \
        nb201.build(README_CELL).SerializeToString()
    assert fbnet.build(FBNET_ARCHS[0]).SerializeToString() == \
        fbnet.build(FBNET_ARCHS[0]).SerializeToString()
    small = hat.HatConfig(512, (1024,), (4,), 512, (512,), (2,), (8,), (1,), vocab_size=64)
    assert hat.build_encoder(small).SerializeToString() == \
        hat.build_encoder(small).SerializeToString()


# -- HAT -------------------------------------------------------------------------------------


def run_hat(cfg: hat.HatConfig, source: int = 30, steps: int = 3, beam: int = 5) -> None:
    """Encoder, first decoder step and ``steps - 1`` cached steps, as HAT times them."""
    graphs = hat.build(cfg, source, steps, beam)
    for model in (graphs.encoder, graphs.decoder_first, graphs.decoder_next):
        onnx.checker.check_model(model)
        assert model.opset_import[0].version == 17 and model.ir_version == 8
    encoder = session(graphs.encoder)
    names = [o.name for o in encoder.get_outputs()]
    memory = encoder.run(None, {"src_tokens": numpy.full((1, source), 7, numpy.int64)})
    assert memory[0].shape == (1, source, cfg.encoder_embed_dim)
    feeds = {n: numpy.repeat(m, beam, axis=0) for n, m in zip(names, memory, strict=True)}
    state = step(session(graphs.decoder_first), feeds, beam)
    assert state["logits"].shape == (beam, cfg.vocab_size)
    for i, n in enumerate(cfg.decoder_ende_layers):
        assert state[f"cross_key_{i}"].shape[2] == n * source
    nxt = session(graphs.decoder_next)
    for past in range(1, steps):
        cache = {k.replace("present", "past"): v for k, v in state.items()
                 if k.startswith(("present", "cross"))}
        new = step(nxt, cache, beam)
        assert new["present_key_0"].shape[2] == past + 1
        state = {**state, **new}
    assert numpy.isfinite(state["logits"]).all()
    assert len(graphs.runs()) == 1 + steps


def step(s: onnxruntime.InferenceSession, feeds: dict[str, numpy.ndarray],
         beam: int) -> dict[str, numpy.ndarray]:
    wanted = {i.name for i in s.get_inputs()}
    inputs = {k: v for k, v in feeds.items() if k in wanted}
    inputs["prev_token"] = numpy.full((beam, 1), 7, numpy.int64)
    outs = s.run(None, inputs)
    return {o.name: v for o, v in zip(s.get_outputs(), outs, strict=True)}


def test_hat_hand_config_runs() -> None:
    cfg = hat.HatConfig(512, (1024, 512), (4, 8), 640, (2048, 512, 1024), (8, 2, 4), (2, 4, 8),
                        (2, 1, 2), vocab_size=100)
    run_hat(cfg, source=12, steps=3, beam=2)


def test_hat_features_without_weight_values_are_the_same() -> None:
    """``weights=False`` (what ``registry.hat_features`` builds) stores no weight values, and
    its features equal those of the graphs with drawn weights, record for record."""
    cfg = hat.HatConfig(512, (3072, 1024, 512), (4, 8, 2), 640, (2048, 512), (8, 2), (2, 4),
                        (3, 1), vocab_size=256)
    real, bare = hat.build(cfg, 12, 3, 2), hat.build(cfg, 12, 3, 2, weights=False)
    for name in ("encoder", "decoder_first", "decoder_next"):
        drawn, empty = getattr(real, name), getattr(bare, name)
        assert empty.ByteSize() < drawn.ByteSize() / 10
        assert parameter_count(empty) == parameter_count(drawn)
        with_values, without = extract_features(drawn), extract_features(empty)
        assert without.params == with_values.params > 0
        assert without.to_dict() == with_values.to_dict()
        assert numpy.array_equal(model_vector(without), model_vector(with_values))
    # HAT's encoder seed drew two exact zeros, which made the random weights look sparse
    assert numpy.count_nonzero(GraphBuilder(hat.SEED).pool) == POOL_SIZE


def test_hat_split_sum_and_invalid_configs() -> None:
    assert hat.split_sum(1194.6666666666667, 6, hat.FFN_CHOICES) == (
        3072, 2048, 512, 512, 512, 512)
    assert sum(hat.split_sum(4.666666666666667, 6, hat.HEAD_CHOICES)) == 28
    assert hat.split_sum(2.0, 3, hat.ENDE_LAYER_CHOICES) == (3, 2, 1)
    with pytest.raises(ModelError, match="not reachable"):
        hat.split_sum(100.0, 2, hat.FFN_CHOICES)
    with pytest.raises(ModelError, match="head counts"):
        hat.HatConfig(512, (512,), (3,), 512, (512,), (4,), (4,), (1,))
    with pytest.raises(ModelError, match="layer count"):
        hat.HatConfig(512, (512,), (4, 4), 512, (512,), (4,), (4,), (1,))
    with pytest.raises(ModelError, match="attended encoder layers"):
        hat.HatConfig(512, (512,), (4,), 512, (512,), (4,), (4,), (2,))


@needs_data
@pytest.mark.parametrize("which", ["smallest", "largest"])
def test_hat_extreme_configs_from_the_table_run(which: str) -> None:
    table = public.load_hat("cpu_xeon")
    size = table["encoder_ffn_embed_dim_avg"] + table["decoder_layer_num"] * (
        table["decoder_ffn_embed_dim_avg"] + table["decoder_embed_dim"])
    position = int(size.to_numpy().argmin() if which == "smallest" else size.to_numpy().argmax())
    cfg: hat.HatConfig = table["config"].iloc[position]
    run_hat(dataclasses.replace(cfg, vocab_size=256), steps=2)


# -- public tables ---------------------------------------------------------------------------


@needs_data
def test_load_nb201_long_form() -> None:
    table = public.load_nb201()
    assert len(table) == 15_625 * 20
    assert table["arch"].nunique() == 15_625 and table["device"].nunique() == 20
    assert list(table.columns) == ["arch_index", "arch", "cifar100_top1", "device", "latency_ms"]
    best = table[table["arch_index"] == 9930]["cifar100_top1"].iloc[0]
    assert best == pytest.approx(73.51, abs=0.01)
    nb201.parse_cell(table["arch"].iloc[0])


@needs_data
def test_load_fbnet_long_form() -> None:
    table = public.load_fbnet()
    assert len(table) == 5_000 * 20 and table["arch"].nunique() == 5_000
    assert set(table.columns) == {"arch_index", "arch", "device", "latency_ms"}
    assert table["latency_ms"].gt(0).all()
    fbnet.parse_arch(table["arch"].iloc[0])


@needs_data
@pytest.mark.parametrize("device", public.HAT_DEVICES)
def test_load_hat_totals(device: str) -> None:
    table = public.load_hat(device)
    assert len(table) == 2_000 and (table["device"] == device).all()
    assert numpy.allclose(table["latency_ms"],
                          table["latency_encoder_ms"] + table["latency_decoder_ms"])
    cfg = table["config"].iloc[0]
    assert isinstance(cfg, hat.HatConfig)
    assert cfg.decoder_layers == table["decoder_layer_num"].iloc[0]


def test_missing_data_is_a_dataset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="not found"):
        public.load_nb201(tmp_path)
    monkeypatch.setenv(public.ENV_VAR, str(tmp_path / "nowhere"))
    assert public.data_root() == tmp_path / "nowhere"
    with pytest.raises(DatasetError, match=public.ENV_VAR):
        public.load_fbnet()
    with pytest.raises(DatasetError, match="unknown"):
        public.load_hat("phone")


def test_env_var_points_at_another_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pandas.DataFrame({"arch": ["0-" * 21 + "0"], "a_ms": [1.0], "b_ms": [2.0]}).to_csv(
        tmp_path / public.FBNET_FILE, index=False)
    monkeypatch.setenv(public.ENV_VAR, str(tmp_path))
    table = public.load_fbnet()
    assert list(table["device"]) == ["a", "b"] and list(table["latency_ms"]) == [1.0, 2.0]


@needs_data
def test_fbnet_choice_order_matches_the_data() -> None:
    """Eyeriss latencies are additive per block (a lookup table): fitted per (layer, choice),
    each kernel's costs must rise g2 < e1 < e3 < e6, 5x5 above 3x3, skip the cheapest; this
    holds only under HW-NAS-Bench's PRIMITIVES order that fbnet.BLOCKS follows."""
    wide = pandas.read_csv(DATA / public.FBNET_FILE, usecols=["arch", "eyeriss_ms"])
    choices = numpy.array([fbnet.parse_arch(a) for a in wide["arch"]])
    onehot = numpy.zeros((len(choices), 22 * 9))
    for layer in range(22):
        onehot[numpy.arange(len(choices)), layer * 9 + choices[:, layer]] = 1.0
    coef = numpy.linalg.lstsq(onehot, wide["eyeriss_ms"].to_numpy(), rcond=None)[0]
    cost = coef.reshape(22, 9) - coef.reshape(22, 9)[:, [8]]
    for k in (0, 4):  # k3 block group, k5 block group
        assert (cost[:, k + 1] < cost[:, k]).all() and (cost[:, k] < cost[:, k + 2]).all()
        assert (cost[:, k + 2] < cost[:, k + 3]).all() and (cost[:, 1 + k] > 0).all()
    assert (cost[:, 7] > cost[:, 3]).all()
