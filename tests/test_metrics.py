from selftaught import metrics


def test_greedy_accuracies_add_the_valid_ones_where_results_carry_them():
    results = [
        {"bucket": "4", "correct": True, "valid": False},  # a lucky answer
        {"bucket": "4", "correct": True, "valid": True},
        {"bucket": "2", "correct": False, "valid": False},
        {"bucket": "2", "correct": True, "valid": True},
    ]
    assert metrics.greedy_accuracies(results) == {
        "accuracy": 0.75,
        "accuracy_by_bucket": {"2": 0.5, "4": 1.0},
        "valid_accuracy": 0.5,
        "valid_accuracy_by_bucket": {"2": 0.5, "4": 0.5},
    }
    plain = [{k: v for k, v in r.items() if k != "valid"} for r in results]
    assert metrics.greedy_accuracies(plain).keys() == {"accuracy", "accuracy_by_bucket"}


def test_accuracy_and_buckets_in_natural_order():
    results = [
        {"bucket": "10", "correct": True},
        {"bucket": "2", "correct": False},
        {"bucket": "2", "correct": True},
        {"bucket": "1", "correct": True},
    ]
    assert metrics.accuracy(results) == 0.75
    by_bucket = metrics.accuracy_by_bucket(results)
    assert list(by_bucket) == ["1", "2", "10"]
    assert by_bucket == {"1": 1.0, "2": 0.5, "10": 1.0}
    assert metrics.accuracy([]) == 0.0
