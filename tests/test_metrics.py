from selftaught import metrics


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
