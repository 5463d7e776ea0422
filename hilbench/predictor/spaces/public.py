"""Loaders of the public latency tables (NAS-Bench-201, FBNet, HAT) in long form.

The tables live in one folder (see its README.md): ``$HILBENCH_LATENCY_DATA`` when set, else
``shared/data/latency`` inside the repository when present, else ``../shared/data/latency``
beside it. Every loader returns one row per (architecture, device) with ``latency_ms``; a
missing folder or file raises ``DatasetError`` saying where it looked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas

from hilbench.core.errors import DatasetError
from hilbench.predictor.spaces.hat import HatConfig

ENV_VAR = "HILBENCH_LATENCY_DATA"
REPO_ROOT = Path(__file__).resolve().parents[3]
NB201_FILE = "nasbench201.csv.gz"
FBNET_FILE = "fbnet.csv.gz"
HAT_DEVICES = ("cpu_raspberrypi", "cpu_xeon", "gpu_titanxp")
HAT_FEATURES = (
    "encoder_embed_dim", "encoder_layer_num", "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg", "decoder_embed_dim", "decoder_layer_num",
    "decoder_ffn_embed_dim_avg", "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg", "decoder_arbitrary_ende_attn_avg",
)
DEVICE_SUFFIX = "_ms"


def data_root(root: str | Path | None = None) -> Path:
    """The folder to read: ``root``, else the environment variable, else the repository's
    default locations."""
    if root is not None:
        return Path(root)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    inside = REPO_ROOT / "shared" / "data" / "latency"
    return inside if inside.is_dir() else REPO_ROOT.parent / "shared" / "data" / "latency"


def _read(root: str | Path | None, name: str) -> pandas.DataFrame:
    path = data_root(root) / name
    if not path.is_file():
        raise DatasetError(f"public latency table {path} not found; set {ENV_VAR} to the folder "
                           f"holding {name}")
    try:
        return pandas.read_csv(path)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"public latency table {path} cannot be read: {exc}") from exc


def _melt(wide: pandas.DataFrame, keep: list[str]) -> pandas.DataFrame:
    """One row per (arch, device) from one ``<device>_ms`` column per device, arch-major."""
    devices = [c for c in wide.columns if c.endswith(DEVICE_SUFFIX)]
    if not devices or "arch" not in wide.columns:
        raise DatasetError("public latency table has no 'arch' or '<device>_ms' columns")
    wide = wide.assign(arch_index=range(len(wide)))
    long = wide.melt(id_vars=["arch_index", *keep], value_vars=devices, var_name="device",
                     value_name="latency_ms")
    long["device"] = long["device"].str.removesuffix(DEVICE_SUFFIX)
    return long.sort_values(["arch_index", "device"], kind="stable").reset_index(drop=True)


def load_nb201(root: str | Path | None = None) -> pandas.DataFrame:
    """NAS-Bench-201: columns arch_index (NB201 index), arch (cell string), cifar100_top1 (%),
    device, latency_ms; 15,625 archs x 20 devices."""
    return _melt(_read(root, NB201_FILE), ["arch", "cifar100_top1"])


def load_fbnet(root: str | Path | None = None) -> pandas.DataFrame:
    """FBNet space (CIFAR-100): columns arch_index, arch ("c-c-...", 22 choices), device,
    latency_ms; 5,000 archs x 20 devices."""
    return _melt(_read(root, FBNET_FILE), ["arch"])


def load_hat(device: str, root: str | Path | None = None) -> pandas.DataFrame:
    """HAT WMT14 en-de on ``device`` (one of HAT_DEVICES): columns config_id, device, the 10
    HAT features, latency_encoder_ms, latency_decoder_ms, latency_ms (their sum) and config
    (a ``HatConfig`` that ``hat.build`` turns into graphs); 2,000 rows."""
    if device not in HAT_DEVICES:
        raise DatasetError(f"HAT device {device!r} unknown; choose one of {', '.join(HAT_DEVICES)}")
    table = _read(root, f"wmt14ende_{device}_all.csv")
    missing = [c for c in (*HAT_FEATURES, "latency_mean_encoder", "latency_mean_decoder")
               if c not in table.columns]
    if missing:
        raise DatasetError(f"HAT table for {device} lacks columns {', '.join(missing)}")
    out = table[list(HAT_FEATURES)].copy()
    out.insert(0, "device", device)
    out.insert(0, "config_id", range(len(table)))
    out["latency_encoder_ms"] = table["latency_mean_encoder"]
    out["latency_decoder_ms"] = table["latency_mean_decoder"]
    out["latency_ms"] = out["latency_encoder_ms"] + out["latency_decoder_ms"]
    configs = [HatConfig.from_features(*row) for row in
               table[list(HAT_FEATURES)].itertuples(index=False, name=None)]
    out["config"] = pandas.Series(configs, index=out.index, dtype=object)
    return out
