"""Same seed and config, same run: samples, training data, evaluations, metrics (without
wall-clock figures) and trained weights; another seed, other samples; and every seed a
phase drew from is written in the run directory.

The toy config samples at temperature 1 with two samples per problem, so that the run's
seed matters from the first sample on (greedy sampling would ignore it). The helpers here
are shared with test_crash_resume.py, whose uninterrupted reference is the run below.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.config_files import resolve
from selftaught.loop import derive_seed, run
from selftaught.store import RunStore, atomic_write_text, read_jsonl
from tests.conftest import TOY

WALL_CLOCK = ("seconds", "tokens_per_second")  # differ between any two runs
SEEDED_PHASES = ("search", "sample", "rationalize", "train", "eval", "reward")


def small_raw(seed: int = 0, **top) -> dict:
    """The toy config with fewer problems (8) sampled at temperature 1, twice each."""
    raw = copy.deepcopy(TOY)
    raw["seed"] = seed
    raw["task"]["train_size"] = 8
    raw["sampling"].update(temperature=1.0, num_samples=2)
    raw.update(top)
    return raw


def small_config(seed: int = 0, **top) -> RunConfig:
    return resolve(small_raw(seed, **top), "small toy")


def run_contents(out: Path) -> dict:
    """What must be identical between two runs of one seed: every row of every JSONL the
    run wrote, metrics without wall-clock fields, the trained weights (a digest), and the
    seeds in stats.json."""
    out = Path(out)
    contents: dict = {
        "metrics": [
            {k: v for k, v in row.items() if k not in WALL_CLOCK}
            for row in read_jsonl(out / "metrics.jsonl")
        ]
    }
    for path in sorted(out.glob("iter_*/*.jsonl*")):
        contents[str(path.relative_to(out))] = read_jsonl(path)
    for path in sorted(out.glob("iter_*/model/*.safetensors")):
        contents[str(path.relative_to(out))] = hashlib.sha256(path.read_bytes()).hexdigest()
    for path in sorted(out.glob("iter_*/stats.json")):
        stats = json.loads(path.read_text())
        contents[str(path.relative_to(out))] = {p: s.get("seed") for p, s in stats.items()}
    return contents


def assert_same_run(got: Path, expected: Path) -> None:
    a, b = run_contents(got), run_contents(expected)
    assert sorted(a) == sorted(b), "different files"
    for key in b:  # file by file, so a failure names the file
        assert a[key] == b[key], key


def run_with_timings(config: RunConfig, out: Path) -> dict[str, float]:
    """Run in this process; return each phase's wall time (``"1/train": 2.3``), seen by
    polling state.json, as the crash test needs to aim its kills."""
    seen: dict[str, float] = {}
    stop = threading.Event()
    start = time.monotonic()

    def poll() -> None:
        while not stop.is_set():
            try:
                completed = json.loads((out / "state.json").read_text())["completed"]
            except (OSError, ValueError):
                completed = []
            for phase in completed:
                seen.setdefault(phase, time.monotonic() - start)
            time.sleep(0.005)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        run(config, out)
    finally:
        stop.set()
        watcher.join()
    completed = RunStore(out).state()["completed"]
    for phase in completed:  # a phase the poller missed: no better estimate than now
        seen.setdefault(phase, time.monotonic() - start)
    timings, before = {}, 0.0
    for phase in completed:
        timings[phase] = max(seen[phase] - before, 0.0)
        before = seen[phase]
    return timings


def reference_run(seed: int = 0) -> tuple[Path, dict[str, float]]:
    """An uninterrupted run of ``small_config(seed)``, made once per test session and kept
    in the session's cache directory (so both test modules share it)."""
    root = Path(os.environ["SELFTAUGHT_CACHE"]) / "reference-runs" / f"seed-{seed}"
    timings_file = root / "timings.json"
    if timings_file.exists():
        return root / "run", json.loads(timings_file.read_text())
    shutil.rmtree(root, ignore_errors=True)
    timings = run_with_timings(small_config(seed), root / "run")
    atomic_write_text(timings_file, json.dumps(timings))
    return root / "run", timings


# -- the tests ----------------------------------------------------------------------------
def test_same_seed_and_config_give_the_same_run(tmp_path):
    reference, _ = reference_run(0)
    run(small_config(0), tmp_path / "again")
    assert_same_run(tmp_path / "again", reference)
    samples = read_jsonl(reference / "iter_0001" / "samples.jsonl.gz")
    assert len({s["completion"] for s in samples}) > 1  # really sampled, not one greedy text


def test_another_seed_gives_other_samples(tmp_path):
    reference, _ = reference_run(0)
    # one iteration is enough: iteration 1's samples do not depend on the iteration count
    other = tmp_path / "seed1"
    run(small_config(1, iterations=1), other)
    name = "iter_0001/samples.jsonl.gz"
    ours, theirs = read_jsonl(other / name), read_jsonl(reference / name)
    unhinted = [[s["completion"] for s in rows if not s["hinted"]] for rows in (ours, theirs)]
    assert unhinted[0] != unhinted[1]
    # the same problems, and M is the same model: only the run's seed differs
    assert [s["problem_id"] for s in ours if not s["hinted"]] == [
        s["problem_id"] for s in theirs if not s["hinted"]
    ]
    assert (
        RunStore(other).stats(1)["sample"]["seed"] != RunStore(reference).stats(1)["sample"]["seed"]
    )


def test_the_seeds_of_sampling_and_training_are_recorded():
    reference, _ = reference_run(0)
    store = RunStore(reference)
    config = store.load_config()
    assert (config.seed, config.task.seed) == (0, 0)  # the run's and the data's, in config.yaml
    seeds = []
    for n in (1, 2):
        stats = store.stats(n)
        for phase in ("sample", "rationalize", "train"):
            assert stats[phase]["seed"] == derive_seed(config.seed, n, phase), (n, phase)
            seeds.append(stats[phase]["seed"])
    assert len(set(seeds)) == len(seeds)  # each phase of each iteration draws its own


def test_every_phase_of_every_iteration_records_its_seed():
    reference, _ = reference_run(0)
    store = RunStore(reference)
    for path in sorted(reference.glob("iter_*/stats.json")):
        n = int(path.parent.name.split("_")[1])
        for phase, stats in store.stats(n).items():
            assert phase in SEEDED_PHASES and isinstance(stats.get("seed"), int), (n, phase)
