"""The selector's solving on candidate tables: what is feasible under LC, AC and the risk,
which candidate wins for each objective, the Pareto front, and what each device is told."""

from __future__ import annotations

from typing import Any

import numpy
import pandas
import pytest

from hilbench.core.constraints import AccuracyConstraint, Constraints, LatencyConstraint
from hilbench.core.errors import SettingsError
from hilbench.selector.pareto import pareto_front
from hilbench.selector.solve import CANDIDATE_COLUMNS, solve

NAN = float("nan")


def candidate(device: str, model: str, latency: float, *, lower: float | None = None,
              upper: float | None = None, accuracy: float = NAN, energy: float = NAN,
              source: str = "measured", cost: float = NAN, note: str = "") -> dict[str, Any]:
    return {"device": device, "model": model, "model_sha256": model * 4, "batch": 1,
            "setting": "onnxruntime 1.20.0", "dvfs": "default", "dvfs_levels": {},
            "source": source,
            "latency_ms": latency,
            "latency_lower_ms": latency if lower is None else lower,
            "latency_upper_ms": latency if upper is None else upper,
            "energy_mj": energy, "power_w": NAN, "cost": cost, "accuracy": accuracy,
            "note": note}


def table(*rows: dict[str, Any]) -> pandas.DataFrame:
    return pandas.DataFrame(list(rows), columns=list(CANDIDATE_COLUMNS))


def lc(ms: float, statistic: str = "p90") -> LatencyConstraint:
    return LatencyConstraint(ms, statistic)


def test_a_prediction_meets_lc_only_when_its_upper_bound_does() -> None:
    frame = table(candidate("phone", "base", 18.0, lower=12.0, upper=26.0, source="predicted",
                            energy=5.0),
                  candidate("board", "base", 19.5, energy=9.0))
    cautious = solve(frame, Constraints(lc(20.0)), "energy")
    assert cautious.best is not None and cautious.best["device"] == "board"
    assert cautious.devices["phone"] == ("nearest feasible variant is 1.30x LC: base "
                                         "(onnxruntime 1.20.0), p90 upper bound 26 ms > 20 ms")
    bold = solve(frame, Constraints(lc(20.0), risk="median"), "energy")
    assert bold.best is not None and bold.best["device"] == "phone"
    assert bold.devices["board"].startswith("feasible, but its best (base (onnxruntime "
                                            "1.20.0)) costs 1.80x the pick's energy")


def test_accuracy_decides_and_each_device_is_told_why_it_lost() -> None:
    frame = table(
        candidate("phone", "int8", 4.0, accuracy=0.88, energy=1.0),
        candidate("phone", "base", 9.0, accuracy=0.93, energy=3.0),
        candidate("board", "int8", 2.0, accuracy=0.88, energy=0.5),
        candidate("fpga", "sparse", 1.0, energy=0.1),  # never scored
        candidate("gpu", "base", NAN, source="none",
                  note="gpu has 3 measured models (a device model needs 10)"),
        candidate("server", "base", 6.0, accuracy=0.93, energy=30.0),
        candidate("local", "int8", 3.0, accuracy=0.88),  # measured, not accurate enough
        candidate("local", "base", NAN, accuracy=0.93, source="none",
                  note="its run was INVALID; no usable predictor"),
    )
    constraints = Constraints(lc(8.0), AccuracyConstraint(0.91, "top1"))
    chosen = solve(frame, constraints, "energy")
    assert chosen.best is not None
    assert (chosen.best["device"], chosen.best["model"]) == ("server", "base")
    assert chosen.devices["server"] == "best: holds the pick"
    assert chosen.devices["phone"].startswith("nearest feasible variant is 1.12x LC: base")
    assert chosen.devices["board"] == "no variant reaches AC (top1 >= 0.91): best 0.88 (int8)"
    assert chosen.devices["fpga"] == ("no accuracy record for its candidates (top1 >= 0.91 "
                                      "asked)")
    assert chosen.devices["gpu"] == ("not measured and not predictable: gpu has 3 measured "
                                     "models (a device model needs 10)")
    assert chosen.devices["local"] == (
        "no variant reaches AC (top1 >= 0.91): best 0.88 (int8); base, which does, is not "
        "measured and not predictable: its run was INVALID; no usable predictor")
    fastest = solve(frame, constraints, "latency")
    assert fastest.best is not None and fastest.best["device"] == "server"


def test_nothing_feasible_gives_the_nearest_candidates() -> None:
    frame = table(candidate("phone", "base", 30.0, accuracy=0.93),
                  candidate("phone", "int8", 12.0, accuracy=0.90),
                  candidate("board", "base", 24.0, accuracy=0.93),
                  candidate("board", "int8", 11.0, accuracy=0.90))
    chosen = solve(frame, Constraints(lc(10.0), AccuracyConstraint(0.92)), "energy")
    assert chosen.best is None and len(chosen.ranked) == 0
    assert list(zip(chosen.nearest.device, chosen.nearest.model, strict=True)) == [
        ("board", "base"), ("phone", "base")]  # AC met, by how far over LC
    hopeless = solve(frame, Constraints(lc(10.0), AccuracyConstraint(0.99)), "energy")
    assert list(hopeless.nearest.model[:2]) == ["base", "base"]  # the most accurate first


def test_unknown_objective_figures_rank_last_and_are_said() -> None:
    frame = table(candidate("phone", "a", 5.0, energy=2.0),
                  candidate("board", "a", 1.0),
                  candidate("fpga", "a", 3.0, energy=1.0))
    chosen = solve(frame, Constraints(lc(10.0)), "energy")
    assert chosen.best is not None and chosen.best["device"] == "fpga"
    assert list(chosen.ranked.device) == ["fpga", "phone", "board"]
    assert chosen.notes == ("1 feasible candidate without energy figures ranked last",)
    assert chosen.devices["board"] == ("feasible, but its best (a (onnxruntime 1.20.0)) ranks "
                                       "after the pick (energy unknown)")
    blind = solve(table(candidate("board", "a", 1.0)), Constraints(lc(10.0)), "energy")
    assert blind.notes == ("no feasible candidate has a figure for energy: ranked by latency",)


def test_cost_is_the_devices_own_and_ties_go_to_the_faster() -> None:
    frame = table(candidate("cheap", "a", 9.0, cost=1.0), candidate("cheap", "b", 4.0, cost=1.0),
                  candidate("dear", "a", 1.0, cost=5.0))
    chosen = solve(frame, Constraints(lc(10.0)), "cost")
    assert chosen.best is not None and (chosen.best["device"], chosen.best["model"]) == (
        "cheap", "b")


def test_bad_constraints_are_refused() -> None:
    with pytest.raises(SettingsError, match="positive duration"):
        LatencyConstraint(0.0)
    with pytest.raises(SettingsError, match="use one of mean, p50, p90, p99"):
        LatencyConstraint(10.0, "p95")
    with pytest.raises(SettingsError, match="objective 'speed'"):
        solve(table(), Constraints(), "speed")


def test_the_pareto_front_is_what_no_candidate_beats() -> None:
    rng = numpy.random.default_rng(3)
    for count in (3000, 6000):  # all compared / a sample's front removes most first
        points = rng.random((count, 3))
        copies = points[1::7].copy()
        points[::7][:len(copies)] = copies  # ties are kept both
        front = set(pareto_front(points).tolist())
        dominated = [bool(numpy.any(numpy.all(points <= p, axis=1)
                                    & numpy.any(points < p, axis=1))) for p in points]
        assert front == {i for i, d in enumerate(dominated) if not d}
    frame = table(candidate("a", "x", 1.0, accuracy=0.90, energy=5.0),
                  candidate("b", "x", 2.0, accuracy=0.95, energy=5.0),
                  candidate("c", "x", 2.0, accuracy=0.90, energy=6.0),  # b beats it
                  candidate("d", "x", 3.0, accuracy=0.80, energy=1.0),
                  candidate("e", "x", 0.5, energy=0.1))  # no accuracy: not on the front
    on_front = solve(frame, Constraints(), "energy").pareto
    assert sorted(on_front.device) == ["a", "b", "d"]


def test_the_closed_loop_measures_until_the_pick_is_a_measurement() -> None:
    """A lab simulated by a dict of true latencies: measuring a candidate turns its row into
    a measurement; the board's run never comes out VALID."""
    from hilbench.selector.verify import Pick, closed_loop, unconfirmed

    truth = {("phone", "a"): 9.0, ("board", "a"): 4.0, ("fpga", "a"): 30.0}
    hoped = {"phone": 2.0, "board": 1.0, "fpga": 0.5}  # predicted energy: fpga looks best
    measured: set[tuple[str, str]] = set()

    def select(tried: frozenset[tuple[str, str]]) -> Any:
        rows = []
        for (device, model), latency in truth.items():
            pair = (device, model * 4)
            if pair in measured and device != "board":
                rows.append(candidate(device, model, latency, energy=latency))
            else:  # predicted optimistically: 3 ms [2, 5]
                rows.append(candidate(device, model, 3.0, lower=2.0, upper=5.0,
                                      source="predicted", energy=hoped[device]))
        return solve(unconfirmed(table(*rows), tried), Constraints(lc(10.0)), "energy")

    def measure(picks: Any) -> None:
        measured.update(p.pair for p in picks)

    verified = closed_loop(select, measure, top_k=1)
    assert verified.status == "measured" and verified.measurements == 3
    assert [r.measured for r in verified.rounds] == [
        (Pick("fpga", "a", "aaaa", 1),), (Pick("board", "a", "aaaa", 1),),
        (Pick("phone", "a", "aaaa", 1),)]
    best = verified.selection.best
    assert best is not None and (best["device"], best["source"]) == ("phone", "measured")
    assert verified.selection.devices["board"].startswith("not measured and not predictable: "
                                                          "measured while verifying")
    assert verified.selection.devices["fpga"].startswith("nearest feasible variant is 3.00x")
    measured.clear()
    stubborn = closed_loop(select, lambda picks: None, top_k=1, max_rounds=2)
    assert stubborn.status == "rounds exhausted" and stubborn.measurements == 2


def test_a_measured_pick_is_checked_against_predictions_that_could_beat_it() -> None:
    """The phone's measurement is feasible; the board's prediction is not (upper bound 14 ms
    > 10 ms) but could be (lower bound 5 ms) and would then cost less: it is measured, and
    wins. The FPGA cannot meet LC even at its lower bound and is left alone."""
    from hilbench.selector.verify import Pick, closed_loop, contenders

    measured: set[str] = set()

    def select(tried: frozenset[tuple[str, str]]) -> Any:
        rows = [candidate("phone", "a", 8.0, energy=4.0)]
        rows.append(candidate("board", "a", 6.0, energy=2.0) if "board" in measured else
                    candidate("board", "a", 9.0, lower=5.0, upper=14.0, source="predicted",
                              energy=3.0))
        rows.append(candidate("fpga", "a", 20.0, lower=15.0, upper=30.0, source="predicted",
                              energy=0.1))
        return solve(table(*rows), Constraints(lc(10.0)), "energy")

    first = select(frozenset())
    assert first.best is not None and first.best["device"] == "phone"
    assert list(contenders(first, frozenset()).device) == ["board"]
    verified = closed_loop(select, lambda picks: measured.update(p.device for p in picks))
    assert verified.status == "measured"
    assert [r.measured for r in verified.rounds] == [(Pick("board", "a", "aaaa", 1),)]
    best = verified.selection.best
    assert best is not None and (best["device"], best["energy_mj"]) == ("board", 2.0)
    accurate = solve(table(candidate("phone", "small", 2.0, accuracy=0.90),
                           candidate("phone", "large", 9.0, accuracy=0.95),
                           candidate("phone", "huge", 12.0, accuracy=0.97)),
                     Constraints(lc(10.0)), "accuracy")
    assert accurate.best is not None and accurate.best["model"] == "large"


def test_with_nothing_feasible_the_predictions_that_could_be_are_measured() -> None:
    """The board's prediction (12 ms [8, 16]) misses 10 ms, but could meet it: measured, it
    does (9 ms). The phone's (30 ms [20, 40]) could not, and is left alone."""
    from hilbench.selector.verify import closed_loop

    measured: set[str] = set()

    def select(tried: frozenset[tuple[str, str]]) -> Any:
        board = (candidate("board", "a", 9.0, energy=2.0) if "board" in measured else
                 candidate("board", "a", 12.0, lower=8.0, upper=16.0, source="predicted"))
        return solve(table(board, candidate("phone", "a", 30.0, lower=20.0, upper=40.0,
                                            source="predicted")), Constraints(lc(10.0)),
                     "energy")

    verified = closed_loop(select, lambda picks: measured.update(p.device for p in picks))
    assert verified.status == "measured" and verified.measurements == 1
    assert verified.rounds[0].pick is None
    best = verified.selection.best
    assert best is not None and best["device"] == "board" and best["source"] == "measured"
    hopeless = closed_loop(lambda tried: solve(table(candidate(
        "phone", "a", 30.0, lower=20.0, upper=40.0, source="predicted")),
        Constraints(lc(10.0)), "energy"), lambda picks: None)
    assert hopeless.status == "nothing feasible" and hopeless.measurements == 0


def test_battery_life_counts_idle_power_and_what_each_inference_adds() -> None:
    """A 10 Wh phone idling at 1 W: a 4 ms inference at 3 W (12 mJ, of which 4 mJ idle)
    served 50 times a second draws 1 + 50 x 0.008 = 1.4 W, 7.14 h; a 2 ms one at 5 W
    (10 mJ, 2 mJ idle) draws 1.4 W too, and the tie goes to the faster. A device with no
    battery, or no idle power, has no battery life, and says why."""
    def phone(model: str, latency: float, power: float, **extra: Any) -> dict[str, Any]:
        return {**candidate("phone", model, latency, energy=latency * power),
                "power_w": power, "idle_w": 1.0, "battery_wh": 10.0, **extra}

    frame = table(phone("slow", 4.0, 3.0), phone("fast", 2.0, 5.0),
                  phone("hungry", 2.0, 9.0),
                  {**candidate("board", "slow", 1.0, energy=2.0), "power_w": 2.0})
    picked = solve(frame, Constraints(lc(20), rate_per_s=50), "battery")
    assert picked.best is not None and picked.best["model"] == "fast"
    assert picked.best["battery_h"] == pytest.approx(10 / 1.4)
    assert picked.devices["board"] == ("feasible, but its battery life is unknown: no battery "
                                       "capacity known (its probe found no battery; give it "
                                       "with --battery DEVICE=WH)")
    hours = dict(zip(picked.candidates["model"], picked.candidates["battery_h"], strict=False))
    assert hours["hungry"] == pytest.approx(10 / (1 + 50 * 0.016))
    with pytest.raises(SettingsError, match="needs the inference rate"):
        solve(frame, Constraints(lc(20)), "battery")


def test_a_rate_bounds_latency_when_it_is_tighter_than_lc() -> None:
    frame = table(candidate("a", "m", 8.0), candidate("b", "m", 15.0))
    assert Constraints(lc(20), rate_per_s=100).bound_ms() == pytest.approx(10)
    assert Constraints(lc(5), rate_per_s=100).bound_ms() == pytest.approx(5)
    picked = solve(frame, Constraints(lc(20), rate_per_s=100), "latency")
    assert len(picked.ranked) == 1 and picked.best is not None and picked.best["device"] == "a"
    assert picked.devices["b"] == ("nearest feasible variant is 1.50x the 10 ms between "
                                   "inferences at 100/s: m (onnxruntime 1.20.0), p90 15 ms "
                                   "> 10 ms")
    assert len(solve(frame, Constraints(rate_per_s=50), "latency").ranked) == 2
    with pytest.raises(SettingsError, match="inference rate must be a positive number"):
        Constraints(rate_per_s=0)


def test_measured_variants_recalibrate_their_devices_predictions() -> None:
    """Two models measured on the phone ran 2x and (at two DVFS settings) 4x and 5x what
    was predicted: a pair counts once (the geometric middle of its settings, 4.47x), and the
    phone's other predictions move by the geometric median of the pairs, 2.99x, interval and
    energy with them; the board has no measured pair and keeps its own."""
    from hilbench.selector.recalibrate import recalibrate

    frame = table(
        candidate("phone", "a", 20.0),
        candidate("phone", "b", 40.0), {**candidate("phone", "b", 50.0), "dvfs": "pinned"},
        candidate("phone", "c", 5.0, lower=4.0, upper=7.0, energy=10.0, source="predicted"),
        candidate("board", "c", 5.0, lower=4.0, upper=7.0, source="predicted"))
    estimates = pandas.DataFrame({"device": ["phone", "phone"], "model_sha256": ["aaaa", "bbbb"],
                                  "latency_ms": [10.0, 10.0]})
    changed = recalibrate(frame, estimates)
    phone_c, board_c = changed.iloc[3], changed.iloc[4]
    factor = (2 * 20 ** 0.5) ** 0.5
    assert (phone_c["latency_ms"], phone_c["latency_lower_ms"], phone_c["latency_upper_ms"],
            phone_c["energy_mj"]) == pytest.approx((5 * factor, 4 * factor, 7 * factor,
                                                    10 * factor))
    assert phone_c["note"] == "recalibrated x2.99 on 2 measured models of these on phone"
    assert board_c["latency_ms"] == 5.0 and board_c["note"] == ""
    assert changed.iloc[:3].equals(frame.iloc[:3])
