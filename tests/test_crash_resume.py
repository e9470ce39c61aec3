"""A real `selftaught run`, killed with SIGKILL mid-sampling, mid-training, mid-write of a
checkpoint, mid-evaluation and at random times, then resumed each time with
`selftaught run --resume`, ends exactly as an uninterrupted run of the same seed: the same
metrics (without wall-clock figures), samples, training data, evaluations and weights, no
sample lost or counted twice.

Each run is the real command line (``selftaught.cli.main``, what the ``selftaught`` console
script calls) in a process of its own, forked from a "zygote" process that did the heavy
imports (torch, transformers, accelerate) once: they take ~10 s on a busy 2-core machine and
would otherwise be most of this test's time. The kill comes from this process, as SIGKILL
from outside would, aimed by polling the run directory: after the phase before the target
completes, wait for a fifth of the target phase's duration in the reference run; for the
checkpoint write, kill the moment ``iter_N/model.tmp`` appears. After each kill the test
checks where it landed and that the directory is consistent (every phase state.json calls
complete has its outputs; every JSONL parses).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from selftaught.config import ConfigError
from selftaught.loop.context import RunContext
from selftaught.loop.phases import phase_outputs
from selftaught.loop.sampling import rationalize
from selftaught.models.base_model import base_model_path
from selftaught.progress import Reporter
from selftaught.store import RunStore, read_jsonl, write_jsonl
from selftaught.tasks import build_task
from tests.conftest import stop_signals_delivered
from tests.test_determinism import (
    assert_same_run,
    reference_run,
    run_contents,
    small_config,
    small_raw,
)

ZYGOTE = r"""
import json, os, signal, sys, traceback
import torch
torch.set_num_threads(1)
import selftaught.cli, selftaught.loop  # the heavy imports, once

def child(cmd):
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as at a terminal
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)  # the command pipe is the zygote's alone
    log = os.open(cmd["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.argv = ["selftaught", *cmd["argv"]]
    code = 0
    try:
        selftaught.cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "start":
        pid = os.fork()
        if pid == 0:
            child(cmd)
        print(json.dumps({"pid": pid}), flush=True)
    elif cmd["op"] == "wait":
        _, status = os.waitpid(cmd["pid"], 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class Zygote:
    """Starts `selftaught` CLI processes; ``wait`` reaps one and gives its exit code."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # one thread, as the reference run (see conftest._one_torch_thread)
            env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"},
        )
        self.ready = False

    def _call(self, **cmd) -> dict:
        if not self.ready:
            assert json.loads(self.proc.stdout.readline()) == {"ready": True}
            self.ready = True
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, argv: list[str], log: Path) -> int:
        return self._call(op="start", argv=argv, log=str(log))["pid"]

    def wait(self, pid: int) -> int:
        return self._call(op="wait", pid=pid)["code"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def exited(pid: int) -> bool:
    """The child has ended (it stays a zombie until the zygote reaps it, so its pid cannot
    be reused while we look)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def completed(out: Path) -> list[str]:
    try:
        return json.loads((out / "state.json").read_text())["completed"]
    except (OSError, ValueError, KeyError):  # not there yet, or being replaced right now
        return []


PHASES = ("sample", "rationalize", "train", "eval")  # of each iteration, in order
ITERATIONS = 2
ORDER = ["0/eval"] + [f"{n}/{p}" for n in range(1, ITERATIONS + 1) for p in PHASES]


@dataclass
class Target:
    """Where to kill: ``fraction`` of the way into phase ``key`` ("phase": the fraction of
    its duration in the reference run, counted from when the phase before it completed),
    while ``key``'s checkpoint is being written ("checkpoint"), or within 0.15 s of the
    process starting, before it completes a phase ("startup"). A phase that completes
    before the kill moves the target on: an aimed one to the same phase of the next
    iteration, a random one to the next phase."""

    name: str
    kind: str  # "phase", "checkpoint" or "startup"
    key: str = ""
    fraction: float = 0.2
    landed: str = ""  # where the directory showed the kill landed
    signum: int = signal.SIGKILL  # SIGTERM, SIGHUP, SIGINT: a stop the run sees and reports

    @property
    def exit_code(self) -> int:
        """As the zygote reports it: -N killed by signal N; 128 + N, the CLI's exit code
        after the run stopped on signal N."""
        return -self.signum if self.signum == signal.SIGKILL else 128 + self.signum

    @property
    def before(self) -> str:
        return ORDER[ORDER.index(self.key) - 1]

    def delay(self, timings: dict[str, float]) -> float:
        return self.fraction * timings[self.key]

    def move_on(self) -> None:
        if self.name.startswith("random"):
            self.key = ORDER[ORDER.index(self.key) + 1]
        else:
            self.key = ORDER[ORDER.index(self.key) + len(PHASES)]
        # phases here vary 2-3x with the machine's load: a phase that ended before the kill
        # says the reference's timings are long now (a random kill once missed every phase)
        self.fraction /= 2


def landing(out: Path, done_at_kill: list[str]) -> str:
    """Where the kill landed, read from the directory: the phase that was running."""
    writing = sorted(p.parent.name for p in out.glob("iter_*/model.tmp"))
    state = completed(out)
    assert state == done_at_kill or len(state) == len(done_at_kill) + 1, "state moved oddly"
    where = f"after {state[-1] if state else 'nothing'}"
    return where + (f", writing {writing[0]}/model" if writing else "")


def check_consistent(out: Path) -> None:
    """What a kill may leave: never a half-written file under a real name, never a phase
    marked complete without its outputs."""
    if not (out / "state.json").exists():
        return
    RunStore(out).verify(phase_outputs())
    for path in out.glob("**/*.jsonl*"):
        read_jsonl(path)  # raises on a torn file
    for path in out.glob("iter_*/stats.json"):
        json.loads(path.read_text())


def sample_keys(out: Path) -> list[tuple]:
    keys = []
    for path in sorted([*out.glob("iter_*/samples.jsonl.gz"), *out.glob("iter_*/rationalized.*")]):
        for s in read_jsonl(path):
            keys.append((path.parent.name, s["problem_id"], s["sample"], s["hinted"]))
    return keys


@pytest.fixture(scope="module")
def zygote():
    base_model_path(small_config())  # built here first, or every child would build it
    with stop_signals_delivered():  # the zygote's children inherit what it has
        z = Zygote()  # its imports overlap the reference run
    yield z
    z.close()


def test_killed_runs_resume_to_the_uninterrupted_result(zygote, tmp_path, capsys):
    targets = [
        Target("mid-sampling", "phase", "1/sample"),
        Target("mid-training", "phase", "1/train"),
        Target("mid-write of a checkpoint", "checkpoint", "1/train"),
        Target("mid-evaluation", "phase", "1/eval"),
        Target("while starting", "startup"),
        Target("random", "phase"),
        Target("random", "phase"),
    ]
    stop_and_resume(zygote, tmp_path, targets, capsys)


def test_runs_stopped_by_sigterm_sighup_and_ctrl_c_resume_to_the_uninterrupted_result(
    zygote, tmp_path, capsys
):
    """The stops a run sees: each says where the run stopped and how to resume it, and the
    run directory it leaves resumes as a SIGKILL's does."""
    targets = [
        Target("SIGTERM mid-sampling", "phase", "1/sample", signum=signal.SIGTERM),
        Target("SIGHUP mid-training", "phase", "1/train", signum=signal.SIGHUP),
        Target("SIGINT mid-evaluation", "phase", "1/eval", signum=signal.SIGINT),
        Target("SIGTERM while starting", "startup", signum=signal.SIGTERM),
    ]
    stop_and_resume(zygote, tmp_path, targets, capsys)


def stop_and_resume(zygote: Zygote, tmp_path: Path, targets: list[Target], capsys) -> None:
    """Kill or stop a run at each target in turn, resuming it each time, then let it end:
    it must end as the uninterrupted reference run did."""
    reference, timings = reference_run(0)
    config_file = tmp_path / "small.yaml"
    config_file.write_text(yaml.safe_dump(small_raw(0)))
    out, log = tmp_path / "run", tmp_path / "log.txt"
    # the random kills vary from run to run; the seed is printed to repeat a failure
    seed = int(os.environ.get("CRASH_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    kills: list[Target] = []
    starts = 0
    events: list = []  # (seconds into the process, target, phases seen completing)
    for target in targets:
        fresh = not (out / "state.json").exists()
        argv = ["run", str(config_file), "--out", str(out)] if fresh else ["run", "--resume"]
        argv += [] if fresh else [str(out)]
        at_start = completed(out)
        if target.name.startswith("random"):  # a phase still to run (not the last), a fraction
            left = [k for k in ORDER if k not in at_start]
            target.key = rng.choice(left[:-1] or left)
            target.fraction = rng.uniform(0.05, 0.6)
        while target.kind != "startup" and target.key in at_start:
            target.move_on()  # its phase is done already: aim at the next chance
        pid, started, starts = zygote.start([*argv, "-q"], log), time.monotonic(), starts + 1
        kill_at = None
        if target.kind == "startup":  # the forked child completes its first phase in ~0.2 s
            kill_at = started + rng.uniform(0.01, 0.15)
        elif target.kind == "phase" and target.before in at_start:
            kill_at = started + 1.0 + target.delay(timings)  # ~1 s to start up
        last_state: list[str] = []
        while not exited(pid):
            now, state = time.monotonic(), completed(out)
            if state != last_state:
                events.append((round(now - started, 3), target.name, state[len(last_state) :]))
                last_state = state
            if target.kind != "startup" and target.key in state:  # missed: the next chance
                assert target.key != ORDER[-1], f"{target.name} missed (seed {seed}): {events}"
                target.move_on()
                kill_at = None
            writing = out / f"iter_{target.key.split('/')[0]:0>4}" / "model.tmp"
            checkpoint_begun = target.kind == "checkpoint" and writing.exists()
            slow_start = target.kind == "startup" and state != at_start  # still early
            if checkpoint_begun or slow_start:
                kill_at = now
            elif target.kind == "phase" and kill_at is None and target.before in state:
                kill_at = now + target.delay(timings)
            if kill_at is not None and now >= kill_at:
                done_at_kill = completed(out)
                os.kill(pid, target.signum)
                code = zygote.wait(pid)
                # at startup the signal may come before the handlers are in: it kills then
                assert (
                    code == target.exit_code or target.kind == "startup" and code == -target.signum
                ), log.read_text()[-2000:]
                if code == 128 + target.signum:  # it says where it stopped, and what next
                    said = log.read_text().splitlines()[-1]
                    assert said.startswith(f"stopped by {signal.Signals(target.signum).name}")
                    assert f"selftaught run --resume {out}" in said, said
                target.landed = landing(out, done_at_kill)
                kills.append(target)
                break
            time.sleep(0.0005 if target.kind == "checkpoint" else 0.002)
        else:
            pytest.fail(f"the run ended before the {target.name} kill (seed {seed}): {events}")
        check_consistent(out)
    # and then to the end, undisturbed
    argv = ["run", "--resume", str(out), "-q"]
    if not (out / "state.json").exists():  # killed before the run directory existed
        argv = ["run", str(config_file), "--out", str(out), "-q"]
    code = zygote.wait(zygote.start(argv, log))
    assert code == 0, log.read_text()
    starts += 1

    assert_same_run(out, reference)
    keys = sample_keys(out)
    assert len(keys) == len(set(keys)) == len(sample_keys(reference))
    with capsys.disabled():
        stops = [signal.Signals(t.signum).name for t in kills]
        counts = ", ".join(f"{stops.count(name)} {name}" for name in dict.fromkeys(stops))
        print(f"\ncrash/resume: {counts}; {starts} processes, resumed identically")
        print(f"  (random kills seeded with CRASH_TEST_SEED={seed})")
        for t in kills:
            print(f"  {t.name:<26} {t.key if t.kind != 'startup' else '':<8} {t.landed}")
    for t in kills:  # each aimed kill landed inside its phase, not before or after it
        if t.kind == "phase":
            assert t.landed == f"after {t.before}", t
        elif t.kind == "checkpoint":
            assert t.landed == f"after {t.before}, writing iter_{t.key[0]:0>4}/model", t
    assert len(kills) == len(targets)


def test_kill_between_the_samples_write_and_the_state_write_of_rationalize(tmp_path):
    """The few milliseconds between a phase's output and its state.json entry are too short
    to hit by polling, so the directory such a kill leaves is built from the reference run:
    rationalize's rationalized.jsonl.gz on disk, state.json still at 1/sample. Rerunning the
    phase must give the reference's samples, each once."""
    reference, _ = reference_run(0)
    out = tmp_path / "run"
    store = RunStore(out)
    config = small_config(0)
    store.create(config)
    for name in ("eval.jsonl.gz", "metrics.json"):
        (store.iter_dir(0) / name).parent.mkdir(parents=True, exist_ok=True)
        (store.iter_dir(0) / name).write_bytes((reference / "iter_0000" / name).read_bytes())
    store.complete(0, "eval", RunStore(reference).stats(0)["eval"])
    for name in ("samples.jsonl.gz", "rationalized.jsonl.gz"):  # the kill left both
        rows = read_jsonl(reference / "iter_0001" / name)
        write_jsonl(store.iter_dir(1) / name, rows)
    store.complete(1, "sample", RunStore(reference).stats(1)["sample"])
    task = build_task(config.task)
    rationalize(RunContext(config, store, task, base_model_path(config), Reporter(quiet=True)), 1)
    assert store.samples(1) == RunStore(reference).samples(1)


def test_reference_run_is_complete():
    """The comparison above means something only if the reference did everything."""
    reference, timings = reference_run(0)
    contents = run_contents(reference)
    assert [r["iteration"] for r in contents["metrics"]] == [0, 1, 2]
    assert "iter_0002/model/model.safetensors" in contents
    assert list(timings) == RunStore(reference).state()["completed"]


# -- training faults, and resuming with changed settings ------------------------------------
def cli(*args: str):
    from typer.testing import CliRunner

    from selftaught.cli import app

    return CliRunner().invoke(app, [*args, "-q"])


def assert_user_error(result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """A run whose first training phase diverges: train.lr=1e6 makes the loss non-finite.
    It keeps wrong answers too, so that what an iteration keeps does not depend on how well
    the toy M adds (which differs between machines): only a threshold can empty it."""
    root = tmp_path_factory.mktemp("nan")
    config_file = root / "small.yaml"
    raw = small_raw(0, iterations=1)
    raw["selection"] = {"require_correct": False}
    config_file.write_text(yaml.safe_dump(raw))
    out = root / "run"
    result = cli("run", str(config_file), "--out", str(out), "--set", "train.lr=1e6")
    return out, result


def test_a_non_finite_loss_stops_the_iteration_with_a_clear_message(diverged):
    out, result = diverged
    assert_user_error(result, "loss is", "lower train.lr", f"--resume {out}")
    assert RunStore(out).state()["last"] == {"iteration": 1, "phase": "rationalize"}
    assert not RunStore(out).model_dir(1).exists()  # no checkpoint from a diverged run
    assert len(read_jsonl(out / "metrics.jsonl")) == 1  # iteration 0 only


def test_resume_with_changed_settings_after_a_nan_and_an_empty_kept_set(diverged, tmp_path):
    from selftaught.loop.training import weights_checksum

    out = tmp_path / "run"
    shutil.copytree(diverged[0], out)
    # a sane learning rate: iteration 1 trains and finishes
    fixed = cli("run", "--resume", str(out), "--set", "train.lr=1e-3")
    assert fixed.exit_code == 0, fixed.output
    assert "train.lr: 1000000.0 -> 0.001" in fixed.output
    checkpoint = weights_checksum(RunStore(out).model_dir(1))
    # one more iteration, where a threshold no reward reaches keeps nothing
    empty = cli(
        "run", "--resume", str(out), "--set", "iterations=2", "--set", "selection.threshold=5"
    )
    assert_user_error(empty, "no training examples", "--set KEY=VALUE")
    store = RunStore(out)
    assert store.state()["last"] == {"iteration": 2, "phase": "rationalize"}
    assert weights_checksum(store.model_dir(1)) == checkpoint  # the last good one stays
    assert not store.model_dir(2).exists()
    done = cli("run", "--resume", str(out), "--set", "selection.threshold=null")
    assert done.exit_code == 0, done.output
    assert [r["iteration"] for r in read_jsonl(out / "metrics.jsonl")] == [0, 1, 2]
    config = store.load_config()
    assert (config.train.lr, config.iterations, config.selection.threshold) == (1e-3, 2, None)
    history = [
        (c["iteration"], c["after"]["phase"], c["changes"], c["applied"])
        for c in store.config_changes()
    ]
    assert history == [
        (1, "rationalize", {"train.lr": {"from": 1e6, "to": 1e-3}}, True),
        (
            2,
            "eval",
            {"iterations": {"from": 1, "to": 2}, "selection.threshold": {"from": None, "to": 5}},
            True,
        ),
        (2, "rationalize", {"selection.threshold": {"from": 5, "to": None}}, True),
    ]
    # a change that would rewrite what finished phases used is refused, naming the key
    refused = cli("run", "--resume", str(out), "--set", "task.train_size=9")
    assert_user_error(refused, "task.train_size", "cannot change")
    bad = cli("run", "--resume", str(out), "--set", "train.lr=-1")
    assert_user_error(bad, "train.lr", "greater than 0")
    assert store.load_config() == config  # neither touched the run


# -- the run directory's own guarantees (no model needed) -------------------------------------
def test_a_writer_killed_at_random_never_leaves_a_torn_file(tmp_path, capsys):
    """A process writing samples, stats, state and metrics as fast as it can, SIGKILLed at
    random moments: every file under its real name parses whole, and every phase state.json
    calls complete has its stats; only temp files are left, and resume clears them."""
    store = RunStore(tmp_path / "run")
    store.create(small_config())
    rng = random.Random(7)
    rows = [{"pad": "x" * 2000}] * 40
    write_jsonl(store.iter_dir(1) / "samples.jsonl.gz", [{"i": 0, **r} for r in rows])
    store.write_metrics(1, {"iteration": 1, "i": 0})
    kills = 0
    for _ in range(25):
        pid = os.fork()
        if pid == 0:  # the writer: file I/O only, then gone without cleanup
            i = 0
            while True:
                i += 1
                write_jsonl(store.iter_dir(1) / "samples.jsonl.gz", [{"i": i, **r} for r in rows])
                store.complete(1, f"phase{i % 7}", {"i": i})
                store.write_metrics(1, {"iteration": 1, "i": i})
        time.sleep(rng.uniform(0.005, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        samples = read_jsonl(store.iter_dir(1) / "samples.jsonl.gz")
        assert len(samples) == len(rows) and len({s["i"] for s in samples}) == 1
        store.verify(phase_outputs())  # state.json parses, and its phases all have stats
        assert read_jsonl(tmp_path / "run" / "metrics.jsonl")[0]["iteration"] == 1
    left = store.remove_temp_files()  # one per kill that landed inside a write
    assert not list((tmp_path / "run").rglob("*.tmp"))
    assert all(p.name.startswith(".") for p in left)
    assert kills == 25 and left, "no kill landed inside a write"
    with capsys.disabled():
        print(
            f"\natomic writes: {kills} SIGKILLs of a writer, {len(left)} inside a write, none torn"
        )


def test_a_settings_change_is_recorded_and_survives_a_kill_half_way(tmp_path):
    store = RunStore(tmp_path / "run")
    store.create(small_config())
    write_jsonl(store.iter_dir(0) / "eval.jsonl.gz", [])
    store.write_metrics(0, {"iteration": 0})
    store.complete(0, "eval", {})
    changes = store.change_config(["train.lr=1e-4", "sampling.temperature=0.5"])
    assert {c["key"] for c in changes} == {"train.lr", "sampling.temperature"}
    assert store.load_config().train.lr == 1e-4
    (record,) = store.config_changes()
    assert record["iteration"] == 1 and record["after"] == {"iteration": 0, "phase": "eval"}
    assert record["applied"] and record["changes"]["train.lr"] == {"from": 2e-4, "to": 1e-4}
    assert store.change_config(["train.lr=0.0001"]) == []  # already so: nothing recorded
    # a kill after the record was written but before config.yaml: the resume finishes it
    state = store.state()
    state["config_changes"].append(
        {
            "iteration": 1,
            "after": state["last"],
            "changes": {"train.steps": {"from": 4, "to": 9}},
            "applied": False,
        }
    )
    store._write_state(state)
    assert store.load_config().train.steps == 4
    store.prepare_resume(phase_outputs())
    assert store.load_config().train.steps == 9
    assert all(c["applied"] for c in store.config_changes())
    # what finished phases used cannot change; a bad value names its key; nothing is written
    before = (tmp_path / "run" / "config.yaml").read_text()
    for override, phrase in [
        ("task.train_size=3", "cannot change"),
        ("base.layers=9", "cannot change"),
        ("method=bstar", "cannot change"),
        ("train.lr=-1", "train.lr"),
        ("train.stpes=3", "did you mean 'train.steps'"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(phrase)):
            store.change_config([override])
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    assert len(store.config_changes()) == 2


def test_one_process_per_run_directory(tmp_path):
    from selftaught.store import RunDirError

    first, second = RunStore(tmp_path / "run"), RunStore(tmp_path / "run")
    first.lock()
    with pytest.raises(RunDirError, match=f"pid {os.getpid()}"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        RunStore(tmp_path / "missing").lock(create=False)
    assert not (tmp_path / "missing").exists()
    # a holder killed with SIGKILL lets go at once: the kernel drops its lock
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        RunStore(tmp_path / "run").lock()
        os.write(ready_w, b"x")
        time.sleep(60)
        os._exit(0)
    os.read(ready_r, 1)
    with pytest.raises(RunDirError, match=f"pid {pid}"):
        first.lock()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    first.lock()
    first.unlock()


def test_resume_clears_what_a_killed_writer_left(tmp_path):
    store = RunStore(tmp_path / "run")
    store.create(small_config())
    it = store.iter_dir(1)
    (it / "model.tmp").mkdir(parents=True)
    (it / "model.tmp" / "model.safetensors").write_bytes(b"half")
    (it / ".samples.jsonl.gz.abc123.tmp").write_bytes(b"half")
    (it / "notes.tmp").write_text("a user's own file, not ours")
    store.prepare_resume(phase_outputs())
    assert sorted(p.name for p in it.iterdir()) == ["notes.tmp"]
