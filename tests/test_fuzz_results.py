"""Fuzzing what an agent sends back (result JSON, progress lines) and what it is sent (job
JSON): random JSON, random text, and mutations of valid documents. Each case gives a
measurement every consumer can use (and the store keeps exactly those), or a hilbench
error with a one-line message; never another exception."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hilbench.agents.protocol import (
    JobSpec,
    error_result,
    ok_result,
    parse_progress,
    parse_result,
    progress_line,
)
from hilbench.core.energy import EnergyReport
from hilbench.core.errors import HilbenchError, ModelError
from hilbench.core.measurement import Measurement
from hilbench.core.records import RUN_FAILED, RUN_OK, RunRecord
from hilbench.core.settings import BenchmarkSettings
from hilbench.profiles import Store
from tests import factories
from tests.conftest import _postgres_database
from tests.fuzzing import assert_clear, examples, json_values, mutated, ran, renumbered

JOB = "job-1"
TOOL_RUN = factories.tool_reported_run()
assert TOOL_RUN.measurement is not None
WITH_ENERGY = replace(TOOL_RUN.measurement, energy=EnergyReport(
    "battery:battery", "power trace", 5.6, 50, 5.1, 0.9), notes=("energy: ok",))
VALID_RESULTS = [json.loads(ok_result(JOB, factories.measurement(count=20))),
                 json.loads(ok_result(JOB, WITH_ENERGY)),
                 json.loads(error_result(JOB, ModelError("tiny.onnx: cannot load it")))]
RESULT_KEYS = ("schema_version", "job_id", "status", "measurement", "error", "samples_ns",
               "reported", "telemetry", "energy", "environment", "settings", "dvfs", "domains")
VALID_JOB = json.loads(JobSpec(JOB, "phone", "emulated", "/m.onnx", "5" * 64,
                               BenchmarkSettings(), dvfs_pin={"cpu4-7": 1401000},
                               power_command="meter --watts").to_json())


class Accepted:
    """The results parse_result accepted, stored as runs: the store must then hold exactly
    them and give each back as it was sent."""

    def __init__(self, store: Store | None = None, backend: str = "") -> None:
        self.store, self.backend = store, backend
        self.runs: dict[str, Measurement | None] = {}  # None: a failed run, its error kept

    def check(self, text: str) -> None:
        try:
            measurement = parse_result(text, JOB)
        except HilbenchError as exc:
            assert_clear(exc)
            self.failed(str(exc))
            return
        except Exception as exc:  # the property under test: nothing but a HilbenchError
            raise AssertionError(f"{type(exc).__name__} from {text[:300]!r}") from exc
        # everything downstream of a result: summary, verdict, JSON, the store
        assert measurement.summary.count >= 1
        assert measurement.verdict.label in ("VALID", "INVALID")
        json.dumps(measurement.to_dict(), allow_nan=False)
        if self.store is None:
            return
        ran(f"result JSON, accepted and stored ({self.backend})")
        run_id = f"run-{len(self.runs)}"
        self.store.save_run(RunRecord(run_id, "phone", factories.MODEL, measurement.settings,
                                     RUN_OK, measurement.started_at, measurement.finished_at,
                                     measurement=measurement))
        self.runs[run_id] = measurement

    def failed(self, error: str) -> None:
        """The error kept as a failed run, as the coordinator keeps it."""
        if self.store is None:
            return
        run_id = f"run-{len(self.runs)}"
        self.store.save_run(RunRecord(run_id, "phone", factories.MODEL, factories.SETTINGS,
                                      RUN_FAILED, 1.0, 2.0, error=error))
        self.runs[run_id] = None

    def verify(self) -> None:
        assert self.store is not None
        stored = self.store.runs()
        assert sorted(stored.run_id) == sorted(self.runs)
        for run_id, sent in self.runs.items():
            if sent is not None:
                back = self.store.measurement(run_id)
                assert back.summary == sent.summary and back.environment == sent.environment


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                               marks=pytest.mark.postgres)])
def accepted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Accepted]:
    """A store per backend for the results accepted in this module."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/profiles.db"])
    else:
        urls = _postgres_database()
    for url in urls:
        with Store.open(url) as store:
            store.add_model(factories.MODEL)
            kept = Accepted(store, request.param)
            yield kept
            kept.verify()


@settings(max_examples=examples(250))
@given(document=st.sampled_from(VALID_RESULTS).flatmap(
    lambda valid: mutated(valid, RESULT_KEYS) | renumbered(valid)))
@example(document=VALID_RESULTS[0])
@example(document=VALID_RESULTS[1])
@example(document=VALID_RESULTS[2])
def test_mutated_results(accepted: Accepted, document: Any) -> None:
    ran("result JSON, mutated from valid")
    accepted.check(json.dumps(document))


@settings(max_examples=examples(150))
@given(document=json_values | st.fixed_dictionaries(
    {"schema_version": st.just(2), "job_id": st.just(JOB), "status": st.just("ok")},
    optional={"measurement": json_values, "error": json_values}))
def test_random_json_results(document: Any) -> None:
    ran("result JSON, random")
    Accepted().check(json.dumps(document))


@settings(max_examples=examples(100))
@given(text=st.text() | st.binary().map(lambda raw: raw.decode("utf-8", "replace"))
       | st.integers(1, 5000).map(lambda depth: "[" * depth + "]" * depth)
       | st.integers(1, 5000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth))
def test_random_text_results(text: str) -> None:
    ran("result JSON, random text")
    Accepted().check(text)


@settings(max_examples=examples(150))
@given(document=mutated(VALID_JOB, ("dvfs_pin", "settings", "emulation", "power_command"))
       | json_values)
@example(document=VALID_JOB)
def test_job_json(document: Any) -> None:
    """What the agent is given (by the host, or leased from the coordinator)."""
    ran("job JSON, mutated and random")
    try:
        job = JobSpec.from_json(json.dumps(document))
    except HilbenchError as exc:
        assert_clear(exc)
        return
    assert JobSpec.from_json(job.to_json()) == job


@settings(max_examples=examples(150))
@given(line=st.text() | st.builds(progress_line, st.text(), st.floats())
       | json_values.map(lambda value: "HILBENCH-PROGRESS " + json.dumps(value)))
def test_progress_lines(line: str) -> None:
    """An agent's stderr: progress is for display only, anything else is None."""
    ran("progress lines")
    parsed = parse_progress(line)
    assert parsed is None or (isinstance(parsed[0], str) and isinstance(parsed[1], float))


def test_valid_results_still_round_trip(tmp_path: Path) -> None:
    for valid in VALID_RESULTS[:2]:
        measurement = parse_result(json.dumps(valid), JOB)
        assert measurement.to_dict() == valid["measurement"]
