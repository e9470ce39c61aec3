"""The schemas of what a run writes: the JSON a run has always written reads back into
the same fields and writes out again key for key, in order."""

from __future__ import annotations

from selftaught.records import EvalStats, MetricsRow, RationalizeStats, SampleStats, TrainStats

ROW = {
    "iteration": 2,
    "method": "bstar",
    "accuracy": 0.5,
    "accuracy_by_bucket": {"1": 1.0, "2": 0.0},
    "valid_accuracy": 0.25,
    "valid_accuracy_by_bucket": {"1": 0.5, "2": 0.0},
    "pass@1": 0.5,
    "pass@k": {"1": 0.4, "4": 0.9},
    "pass@k-s": {"4-1": 0.9},
    "best_of_k_accuracy": 0.75,
    "problems": 6,
    "generated_correct": 3,
    "distinct_correct": 1.5,
    "rationalization_attempts": 0,
    "rationalized": 0,
    "train_examples": 4,
    "selected_accuracy": 1.0,
    "train_steps": 6,
    "train_loss": 0.12,
    "temperature": 0.5,
    "threshold": 0.09,
    "balance_score": 0.3,
    "search_balance_scores": {"0.5": 0.3, "1": 0.2},
    "unparseable": 1,
    "seconds": {"search": 1.0, "sample": 2.0, "rationalize": 0.0, "train": 3.0, "eval": 1.0},
    "tokens_per_second": {"sample": 100.0, "train": 50.0},
}


def test_a_metrics_row_round_trips_key_for_key_in_order():
    row = MetricsRow.from_json(ROW)
    assert row.pass_at_k == {"1": 0.4, "4": 0.9} and row.pass_at_1 == 0.5
    assert list(row.to_json().items()) == list(ROW.items())


def test_measures_a_run_did_not_take_are_absent_not_null():
    plain = {k: v for k, v in ROW.items() if k not in MetricsRow.EXPLORATION_KEYS}
    plain = {k: v for k, v in plain.items() if not k.startswith("valid_")}
    row = MetricsRow.from_json(plain)
    assert row.pass_at_k is None and row.exploration("pass@k") == {}
    assert row.to_json() == plain


def test_an_older_row_reads_with_defaults_and_unknown_keys_are_ignored():
    old = {"iteration": 0, "method": "star", "accuracy": 0.1, "accuracy_by_bucket": {}}
    row = MetricsRow.from_json({**old, "a_key_from_the_future": 1})
    assert row.problems == 0 and row.seconds == {} and row.threshold is None


def test_phase_figures_write_their_fields_in_order_and_read_back():
    sample = SampleStats(seconds=1.0, tokens=9, samples=3, correct=1, distinct_correct=0.5)
    assert list(sample.to_json())[-2:] == ["seed", "distinct_correct"]
    assert SampleStats.from_json({**sample.to_json(), "extra": 1}) == sample
    assert list(RationalizeStats(attempted=2).to_json())[-1] == "attempted"
    assert TrainStats.from_json({"steps": 4}).examples == 0
    assert "exploration" not in EvalStats(seconds=1.0).to_json()
    assert EvalStats(exploration={"pass@k": {}}).to_json()["exploration"] == {"pass@k": {}}
