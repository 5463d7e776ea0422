"""Predictor artifacts: written atomically, checked before anything is unpickled."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from hilbench.predictor import artifact
from hilbench.predictor.artifact import ArtifactError, load, read_header, save


class Bomb:
    """Unpickling this runs code: a check must refuse the file before it gets here."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch unpickled-marker",))


def _rewrite_header(path: Path, **changes: object) -> None:
    magic, header, payload = path.read_bytes().split(b"\n", 2)
    fields = {**json.loads(header), **changes}
    path.write_bytes(magic + b"\n" + json.dumps(fields).encode() + b"\n" + payload)


def test_round_trip_keeps_header_and_payload(tmp_path: Path) -> None:
    path = save(tmp_path / "sub" / "p.hbp", {"training_set_id": "abc", "devices": {}},
                {"models": [1, 2, 3]})
    loaded = load(path)
    assert loaded.payload == {"models": [1, 2, 3]}
    header = loaded.header
    assert header["training_set_id"] == "abc"
    assert header["format_version"] == artifact.ARTIFACT_FORMAT
    assert header["sklearn_version"] == artifact.sklearn_version()
    assert header["payload_bytes"] == len(pickle.dumps({"models": [1, 2, 3]},
                                                       protocol=pickle.HIGHEST_PROTOCOL))
    assert read_header(path) == header
    assert [p.name for p in path.parent.iterdir()] == ["p.hbp"]  # no temp file left


@pytest.mark.parametrize(("changes", "expected"), [
    ({"sklearn_version": "0.24.2"}, "trained with scikit-learn 0.24.2; this is scikit-learn"),
    ({"feature_schema_version": 1}, "trained with feature schema 1"),
    ({"hilbench_version": "0.0.1"}, "trained with hilbench 0.0.1"),
    ({"feature_names_sha256": "0" * 64}, "other feature names"),
    ({"model_code_sha256": "0" * 64}, "other predictor model code"),
    ({"payload_sha256": "0" * 64}, "does not match its sha256 checksum"),
])
def test_a_mismatch_is_refused_before_unpickling(tmp_path: Path, changes: dict[str, object],
                                                 expected: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = save(tmp_path / "p.hbp", {"devices": {}}, Bomb())
    _rewrite_header(path, **changes)
    with pytest.raises(ArtifactError, match="retrain with bench predictor train") as refused:
        load(path)
    assert expected in str(refused.value)
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "unpickled-marker").exists()


def test_damaged_files_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = save(tmp_path / "p.hbp", {"devices": {}}, Bomb())
    data = path.read_bytes()
    cases = {
        "flipped": data[:-1] + bytes([data[-1] ^ 0x40]),
        "truncated": data[: len(data) - 3],
        "header": data[:30],
        "foreign": b"PK\x03\x04 a zip file\n",
        "future": data.replace(b"HILBENCH-PREDICTOR 1", b"HILBENCH-PREDICTOR 9", 1),
    }
    messages = {}
    for name, content in cases.items():
        broken = tmp_path / f"{name}.hbp"
        broken.write_bytes(content)
        with pytest.raises(ArtifactError) as refused:
            load(broken)
        messages[name] = str(refused.value)
    assert "does not match its sha256 checksum" in messages["flipped"]
    assert "truncated" in messages["truncated"]
    assert "header is damaged" in messages["header"]
    assert "is not a hilbench predictor file" in messages["foreign"]
    assert "predictor format 9; this hilbench reads format 1" in messages["future"]
    assert not (tmp_path / "unpickled-marker").exists()
    with pytest.raises(ArtifactError, match="predictor file not found"):
        load(tmp_path / "missing.hbp")


def test_latest_picks_the_newest_and_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="run bench predictor train first"):
        artifact.latest(tmp_path)
    older = save(tmp_path / "a.hbp", {}, 1)
    newer = save(tmp_path / "b.hbp", {}, 2)
    os.utime(older, (1_000_000, 1_000_000))
    assert artifact.latest(tmp_path) == newer
