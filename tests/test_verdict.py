"""The verdict rules a user sees in `bench run`: too few runs, too short, unstable."""

from __future__ import annotations

import pytest

from hilbench.core.errors import SettingsError
from hilbench.core.settings import BenchmarkSettings
from hilbench.core.stats import LatencySummary, percentile
from hilbench.core.verdict import judge

MS = 1_000_000


def test_summary_matches_numpy_percentiles() -> None:
    numpy = pytest.importorskip("numpy")
    samples = [int(v * MS) for v in numpy.random.default_rng(1).lognormal(1.0, 0.3, 997)]
    summary = LatencySummary.from_ns(samples)
    values = numpy.array(samples) / MS
    assert summary.count == 997
    assert summary.mean_ms == pytest.approx(values.mean())
    assert summary.std_ms == pytest.approx(values.std(ddof=1))
    for name, q in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99)):
        assert getattr(summary, name) == pytest.approx(numpy.percentile(values, q))
    assert (summary.min_ms, summary.max_ms) == (values.min(), values.max())


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_stable_long_enough_sample_is_valid() -> None:
    summary = LatencySummary.from_ns([10 * MS, 10 * MS + 1000, 10 * MS - 1000] * 10)
    verdict = judge(summary, 1.5, BenchmarkSettings(min_runs=30, min_duration_s=1.0))
    assert verdict.valid and verdict.label == "VALID" and verdict.describe() == "VALID"


def test_each_broken_rule_is_named() -> None:
    summary = LatencySummary.from_ns([5 * MS, 15 * MS, 5 * MS, 15 * MS])
    verdict = judge(summary, 0.04, BenchmarkSettings(min_runs=10, min_duration_s=1.0))
    assert not verdict.valid
    assert verdict.label == "INVALID"
    assert verdict.reasons == (
        "too few runs: 4 < 10",
        "too short: 0.04 s < 1 s",
        "unstable: coefficient of variation 57.7% > 10%",
    )


def test_cv_threshold_is_configurable() -> None:
    summary = LatencySummary.from_ns([9 * MS, 11 * MS] * 20)
    loose = BenchmarkSettings(min_runs=1, min_duration_s=0.0, max_cv=0.2)
    strict = BenchmarkSettings(min_runs=1, min_duration_s=0.0, max_cv=0.05)
    assert judge(summary, 1.0, loose).valid
    assert judge(summary, 1.0, strict).reasons[0].startswith("unstable")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threads": 0}, "threads must be >= 1"),
        ({"min_runs": 0}, "minimum runs must be >= 1"),
        ({"warmup_runs": -1}, "warm-up runs"),
        ({"max_duration_s": 0}, "maximum duration"),
        ({"batch_size": 0}, "batch size"),
        ({"shapes": {"x": (1, 0)}}, "shape of input x"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        BenchmarkSettings(**kwargs)


def test_settings_round_trip_through_json_dict() -> None:
    settings = BenchmarkSettings(threads=2, dims={"sequence": 64}, shapes={"x": (2, 3)}, seed=7)
    assert BenchmarkSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(SettingsError, match="malformed"):
        BenchmarkSettings.from_dict({"threads": "two"})


def test_confidence_interval_and_required_runs() -> None:
    summary = LatencySummary.from_ns([9 * MS, 11 * MS] * 50)  # mean 10 ms, cv ~ 10 %
    assert summary.ci95_ms == pytest.approx(1.96 * summary.std_ms / 10, rel=1e-3)
    assert summary.required_runs(0.01) == 389  # (1.96 * 0.1005 / 0.01) ** 2, rounded up
    assert summary.required_runs(0.05) == 16
    with pytest.raises(ValueError):
        summary.required_runs(0)
