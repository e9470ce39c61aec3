"""A user's mistake, or the machine's, is a message: exit code 2 and one paragraph naming
the file, key or value and what was expected, never a traceback, and nothing written so far
lost. Model paths are checked before a run directory exists; a resume checks that the data
and model are those the run started with; a full disk names the file and the resume
command; SIGTERM, SIGHUP and Ctrl-C say where the run stopped. ``test_fuzz.py`` runs the same
kinds of input in bulk; the model and data built here are shared with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import typing
from pathlib import Path

import pydantic
import pytest
import yaml
from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.config import resolve
from selftaught.loop.inputs import INPUTS, check_inputs, fingerprint
from selftaught.loop.phases import phase_outputs
from selftaught.models import check, hub, loading
from selftaught.models.tiny import save_new_tiny
from selftaught.progress import Reporter
from selftaught.stopping import Stopped, stop_on_signals
from selftaught.store import RunStore, read_jsonl, write_jsonl
from selftaught.tasks import build_task
from tests.conftest import stop_signals_delivered

runner = CliRunner()


# -- what the tests share (test_fuzz.py too) -------------------------------------------------
def data_raw(data: Path, model: Path, **top) -> dict:
    """A data task on ``data`` with ``model``: a run of it takes seconds."""
    raw = {
        "iterations": 1,
        "task": {"name": "jsonl", "path": str(data), "eval_size": 4},
        "model": {"name_or_path": str(model)},
        "sampling": {"max_new_tokens": 8, "batch_size": 32},
        "selection": {"require_correct": False},  # the untrained model is never right
        "train": {"steps": 2, "steps_increment": 0, "batch_size": 4},
        "eval": {"batch_size": 32},
        "log": {"tensorboard": False},
        "quiet": True,
    }
    return {**raw, **top}


def write_data(path: Path, rows: int = 12) -> Path:
    lines = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(rows)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


@pytest.fixture
def data_run(tmp_path, tiny_model):
    """(config file, data file, model dir) of a data-task run, the model this test's own."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    data = write_data(tmp_path / "rows.jsonl")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(data_raw(data, model)))
    return config, data, model


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` by path, as a digest of its bytes."""
    files = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*")) if root.exists() else []
        for path in paths:
            if path.is_file() and path.name != ".lock":
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def assert_message(result, *phrases: str) -> str:
    """Exit code 2 and ``error:``, no traceback (CliRunner keeps an uncaught exception in
    ``result.exception``: anything but SystemExit is one)."""
    output = result.output
    assert isinstance(result.exception, SystemExit), (output, result.exception)
    assert result.exit_code == 2 and "error:" in output and "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, (phrase, output)
    return output


def started_run(config_file: Path) -> Path:
    """The run directory ``selftaught run`` leaves once iteration 0 is done, built by hand
    in a moment: config, inputs.json, and 0/eval with its files."""
    config = resolve(yaml.safe_load(config_file.read_text()), str(config_file))
    out = config_file.parent / "run"
    store = RunStore(out)
    store.create(config)
    task = build_task(config.task)
    check_inputs(store, fingerprint(task, config, Path(config.model.name_or_path)), Reporter())
    write_jsonl(store.iter_dir(0) / "eval.jsonl.gz", [])
    store.write_metrics(0, {"iteration": 0, "accuracy": 0.0, "accuracy_by_bucket": {}})
    store.complete(0, "eval", {"seconds": 0.0})
    return out


# -- model paths, before a run directory exists ----------------------------------------------
def _replace(path: Path, name: str, data: bytes) -> None:
    (path / name).write_bytes(data)


BAD_MODELS = {  # how to break a good checkpoint, and what the message must say
    "missing": (lambda m: shutil.rmtree(m), "no such directory"),
    "a file": (lambda m: (shutil.rmtree(m), m.write_text("x")), "is a file"),
    "empty": (lambda m: [p.unlink() for p in m.iterdir()], "no config.json"),
    "no config.json": (lambda m: (m / "config.json").unlink(), "no config.json"),
    "config.json torn": (lambda m: _replace(m, "config.json", b'{"model_t'), "config.json"),
    "config.json without model_type": (
        lambda m: _replace(m, "config.json", b'{"a": 1}'),
        "no model_type",
    ),
    "safetensors header garbled": (
        lambda m: _replace(
            m, "model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\xff" * 40
        ),
        "not readable",
    ),
    "safetensors truncated": (
        lambda m: _replace(m, "model.safetensors", (m / "model.safetensors").read_bytes()[:5000]),
        "truncated",
    ),
    "safetensors with bytes after": (
        lambda m: _replace(m, "model.safetensors", (m / "model.safetensors").read_bytes() + b"x"),
        "damaged",
    ),
    "safetensors empty": (lambda m: _replace(m, "model.safetensors", b""), "no safetensors header"),
    "no weights": (lambda m: (m / "model.safetensors").unlink(), "weights are missing"),
    "only pytorch_model.bin": (
        lambda m: (m / "model.safetensors").rename(m / "pytorch_model.bin"),
        "pickle",
    ),
    "a shard missing": (
        lambda m: (
            _replace(
                m, "model.safetensors.index.json", b'{"weight_map": {"a": "s-1.safetensors"}}'
            ),
            (m / "model.safetensors").unlink(),
        ),
        "s-1.safetensors",
    ),
    "no tokenizer": (
        lambda m: [p.unlink() for p in m.glob("tokenizer*")],
        "no tokenizer",
    ),
    "an adapter of a missing base": (
        lambda m: (
            _replace(m, "adapter_config.json", b'{"base_model_name_or_path": "/no/base"}'),
            (m / "model.safetensors").rename(m / "adapter_model.safetensors"),
        ),
        "/no/base",
    ),
}


@pytest.mark.parametrize("kind", BAD_MODELS)
def test_a_bad_model_path_is_named_before_the_run_directory_exists(data_run, kind):
    config, _, model = data_run
    breaks, phrase = BAD_MODELS[kind]
    breaks(model)
    out = config.parent / "run"
    assert_message(runner.invoke(app, ["run", str(config), "--out", str(out)]), phrase)
    assert not out.exists()


@pytest.fixture
def no_hub_cache(tmp_path, monkeypatch):
    """No cached models, no proxy: what the hub checks see comes from the test alone."""
    monkeypatch.setattr(check, "cached_snapshot", lambda name: None)
    for var in ("HTTPS_PROXY", "https_proxy", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    hub._reachable.cache_clear()
    yield
    hub._reachable.cache_clear()


def test_a_hub_name_without_network_is_named_at_once(data_run, no_hub_cache, monkeypatch):
    """HF_HUB_OFFLINE, or no connection to the hub: seconds, not transformers' retries."""
    config, _, _ = data_run
    out = config.parent / "run"
    args = ["run", str(config), "--out", str(out), "--set", "model.name_or_path=org/model"]
    for env, phrase in [
        ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
        ({"HF_ENDPOINT": "http://127.0.0.1:9"}, "cannot be reached"),  # the discard port
    ]:
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        start = time.monotonic()
        assert_message(runner.invoke(app, args), "'org/model'", phrase, "hf download org/model")
        assert time.monotonic() - start < hub.NETWORK_WAIT + 2
        for var in env:
            monkeypatch.delenv(var)
    assert not out.exists()


def test_a_hub_name_the_hub_does_not_have_is_named(data_run, no_hub_cache, monkeypatch):
    """A hub of our own on localhost answers 404, as huggingface.co does for no such model."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        config, _, _ = data_run
        args = ["run", str(config), "--out", str(config.parent / "run")]
        result = runner.invoke(app, [*args, "--set", "model.name_or_path=org/no-such-model"])
        assert_message(result, "'org/no-such-model' is no local directory and no model on the hub")
    finally:
        server.shutdown()


def refused_before_a_run_directory(data_run, overrides: list[str], *phrases: str) -> None:
    """``selftaught run`` of ``data_run``'s config with ``--set`` each of ``overrides``
    stops with a message holding ``phrases``, and leaves no run directory."""
    config, _, _ = data_run
    out = config.parent / "run"
    sets = [arg for override in overrides for arg in ("--set", override)]
    assert_message(runner.invoke(app, ["run", str(config), "--out", str(out), *sets]), *phrases)
    assert not out.exists()


def test_max_new_tokens_beyond_the_models_context_is_refused(data_run):
    refused_before_a_run_directory(
        data_run,
        ["sampling.max_new_tokens=5000"],
        "sampling.max_new_tokens",
        "1024",
        "max_position_embeddings",
    )


def test_a_compile_backend_torch_does_not_have_is_refused(data_run):
    refused_before_a_run_directory(
        data_run,
        ["train.torch_compile=true", "train.torch_compile_backend=indcutor"],
        "train.torch_compile_backend",
        "'indcutor'",
        "inductor",
    )


def test_inductor_without_a_cpp_compiler_is_refused(data_run, monkeypatch):
    import torch
    from torch._inductor import cpp_builder

    if torch.cuda.is_available():
        pytest.skip("inductor needs no host compiler check where CUDA is")

    def no_compiler():
        raise RuntimeError("no g++")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    refused_before_a_run_directory(
        data_run,
        ["train.torch_compile=true"],
        "train.torch_compile",
        "no C++ compiler",
        "aot_eager",
    )


# -- the config: counts, bounds, files that are not files ------------------------------------
@pytest.mark.parametrize(
    "override, phrase",
    [
        ("iterations=true", "valid integer"),
        ("iterations=1.0e+9", "valid integer"),
        ("iterations=1000000000", "less than or equal to 1000"),
        ("seed=1.5", "valid integer"),
        ("sampling.max_new_tokens=1000000000", "less than or equal to 131072"),
        ("task.train_size=1000000000", "less than or equal to 1000000"),
        ("sampling.num_samples=true", "valid integer"),
        ("eval.pass_k=[true]", "valid integer"),
        ("bstar.threshold_step=1e-9", "greater than or equal to 0.0001"),
    ],
)
def test_counts_are_integers_and_sizes_are_bounded(override, phrase):
    assert_message(
        runner.invoke(app, ["config", "--set", override]), override.split("=")[0], phrase
    )


def _counts(model, prefix=""):
    """(key, field) of every integer field of the config's models, sections walked."""
    for name, field in model.model_fields.items():
        members = typing.get_args(field.annotation) or (field.annotation,)
        for member in members:
            if isinstance(member, type) and issubclass(member, pydantic.BaseModel):
                yield from _counts(member, f"{prefix}{name}.")
        plain = [typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m
                 for m in members]  # fmt: skip
        if int in plain or field.annotation is int:
            yield prefix + name, field


def test_every_count_in_the_config_is_strict_and_bounded():
    """So a key added later is too: Count, and an upper bound (le=)."""
    from selftaught.config import TASK_CONFIGS, RunConfig

    fields = dict(_counts(RunConfig))
    for name, model in TASK_CONFIGS.items():
        fields |= {f"task({name}).{k}": f for k, f in _counts(model)}
    assert len(fields) > 40
    for key, field in fields.items():
        notes = [*field.metadata, *(a for m in typing.get_args(field.annotation)
                                    for a in typing.get_args(m)[1:])]  # fmt: skip
        assert any(isinstance(n, pydantic.Strict) for n in notes), f"{key}: not a Count"
        assert any(getattr(n, "le", None) is not None for n in notes), f"{key}: no upper bound"


def test_a_training_schedule_that_compounds_past_any_end_is_refused():
    result = runner.invoke(
        app, ["config", "--set", "iterations=1000", "--set", "train.steps_growth=0.2"]
    )
    assert_message(result, "train: iteration 1000 would train", "steps_growth 0.2")


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging, as a FIFO read would."""

    def hung(signum, frame):
        raise AssertionError(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_device_or_huge_file_as_the_config_is_refused(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# x\n" * 500_000)
    cases = {fifo: "FIFO", Path("/dev/zero"): "character device", huge: "too large"}
    with deadline(20):
        for path, phrase in cases.items():
            for command in (
                ["config", str(path)],
                ["run", str(path), "--out", str(tmp_path / "r")],
            ):
                assert_message(runner.invoke(app, command), str(path), phrase)
    assert not (tmp_path / "r").exists()


def test_a_run_directory_that_cannot_be_made_is_named(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for out, blocker in [("/dev/null/run", "/dev/null"), (a_file, a_file), (a_file / "x", a_file)]:
        result = runner.invoke(app, ["run", "--out", str(out), "-q"])
        assert_message(result, f"{out}: cannot be a run directory ({blocker} is not a folder)")
    assert a_file.read_text() == "x"


# -- resuming --------------------------------------------------------------------------------
def test_a_resume_takes_a_changed_model_until_a_phase_has_completed(data_run, tmp_path):
    config_file, _, model = data_run
    config = resolve(yaml.safe_load(config_file.read_text()))
    out = tmp_path / "run"
    store = RunStore(out)
    store.create(config)  # stopped before its first phase, as a bad model would leave it
    before = (out / "config.yaml").read_text()
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", "model.name_or_path=/no"])
    assert_message(result, "model.name_or_path: /no: no such directory")  # checked, not frozen
    assert (out / "config.yaml").read_text() == before  # a refused change is not written
    other = tmp_path / "other-model"
    shutil.copytree(model, other)
    assert store.change_config([f"model.name_or_path={other}", "task.eval_size=3"])
    assert store.load_config().model.name_or_path == str(other)
    # once a phase has used them, they are frozen
    write_jsonl(store.iter_dir(0) / "eval.jsonl.gz", [])
    store.write_metrics(0, {"iteration": 0})
    store.complete(0, "eval", {})
    result = runner.invoke(
        app, ["run", "--resume", str(out), "--set", f"model.name_or_path={model}"]
    )
    assert_message(result, "model.name_or_path cannot change in a run that has started")


def _edit_question(data: Path, question: str) -> None:
    text = data.read_text()
    assert question in text
    data.write_text(text.replace(question, question + " (edited)"))


CHANGES = {
    "train set": lambda task, data, model: _edit_question(data, task.train_problems()[0].question),
    "held-out set": lambda task, data, model: _edit_question(
        data, task.eval_problems()[0].question
    ),
    "model": lambda task, data, model: save_new_tiny(model, 32, 1, 2, seed=1),  # other weights
}


@pytest.mark.parametrize("changed", CHANGES)
def test_a_resume_with_other_data_or_another_model_refuses(data_run, changed):
    config_file, data, model = data_run
    out = started_run(config_file)
    config = RunStore(out).load_config()
    CHANGES[changed](build_task(config.task), data, model)
    before = snapshot(out)
    result = runner.invoke(app, ["run", "--resume", str(out), "--set", "iterations=2"])
    assert_message(result, f"the run's inputs changed since it started: {changed} (", "NEW_DIR")
    assert snapshot(out) == before  # not even the --set change is written


def test_inputs_are_recorded_checked_and_a_run_from_before_them_gets_a_note(data_run, capsys):
    config_file, _, model = data_run
    out = started_run(config_file)
    store = RunStore(out)
    config = store.load_config()
    now = fingerprint(build_task(config.task), config, model)
    recorded = json.loads((out / INPUTS).read_text())
    assert recorded == now and recorded["train"]["problems"] == 8
    assert recorded["held_out"]["problems"] == 4 and len(recorded["model"]["weights"]) == 64
    check_inputs(store, now, Reporter())  # the same inputs: passes, writes nothing new
    (out / INPUTS).unlink()  # a run of before inputs.json: a note, and recorded from now on
    check_inputs(store, now, Reporter())
    assert "was started before runs recorded their inputs" in capsys.readouterr().err
    assert json.loads((out / INPUTS).read_text()) == now


def test_large_weights_are_fingerprinted_by_samples_that_any_change_reaches(
    tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setattr(loading, "WHOLE_HASH_BYTES", 0)  # as for weights over 1 GiB
    copy, other = tmp_path / "copy", tmp_path / "other"
    shutil.copytree(tiny_model, copy)
    save_new_tiny(other, 32, 1, 2, seed=1)
    digest = loading.weights_digest(tiny_model)
    assert digest.startswith("sampled:") and loading.weights_digest(copy) == digest
    assert loading.weights_digest(other) != digest


def test_metrics_jsonl_lost_or_damaged_is_rebuilt_on_resume(data_run):
    out = started_run(data_run[0])
    store = RunStore(out)
    whole = (out / "metrics.jsonl").read_bytes()
    for damage in (lambda p: p.unlink(), lambda p: p.write_text('{"a": 1}\n{"torn')):
        damage(out / "metrics.jsonl")
        store.prepare_resume(phase_outputs())
        assert (out / "metrics.jsonl").read_bytes() == whole


def test_a_full_disk_names_the_file_and_the_resume_command(data_run, monkeypatch):
    """os.fsync fails with ENOSPC, as a full disk makes it (test_a_full_disk_for_real does
    it with a small file system); the file being written is named, none is lost."""
    out = started_run(data_run[0])
    before = snapshot(out)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = runner.invoke(app, ["run", "--resume", str(out), "-q"])
    monkeypatch.undo()
    assert_message(
        result,
        "the disk is full: no space left on the device writing",
        f"{out}/",
        f"free some space, then `selftaught run --resume {out}`",
    )
    assert snapshot(out) == before
    assert not list(out.rglob("*.tmp"))


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)])
    return mounted.returncode == 0


def test_a_full_disk_for_real(data_run, tmp_path):
    """A run on a file system too small for it: the message, then a resume with room."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "48k"):
        pytest.skip("this machine does not let a tmpfs be mounted")
    try:
        out = disk / "run"
        result = runner.invoke(app, ["run", str(data_run[0]), "--out", str(out)])
        assert_message(result, "the disk is full", f"--resume {out}")
        completed = RunStore(out).state()["completed"]
        assert completed and completed != ["0/eval", "1/sample", "1/rationalize", "1/train"]
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        resumed = runner.invoke(app, ["run", "--resume", str(out)])
        assert resumed.exit_code == 0, resumed.output
        assert [r["iteration"] for r in read_jsonl(out / "metrics.jsonl")] == [0, 1]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# -- signals ---------------------------------------------------------------------------------
def test_sigterm_says_where_the_run_stopped_and_it_resumes(data_run, monkeypatch):
    from selftaught.loop import phases

    def stopped_by_sigterm(ctx, n):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler raises here

    stopping = [dataclasses.replace(p, run=stopped_by_sigterm) if p.name == "train" else p
                for p in phases.PHASES]  # fmt: skip
    monkeypatch.setattr(phases, "PHASES", tuple(stopping))
    before = signal.getsignal(signal.SIGTERM)  # Ray, run earlier in this process, sets one
    out = data_run[0].parent / "run"
    result = runner.invoke(app, ["run", str(data_run[0]), "--out", str(out)])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert "Traceback" not in result.output
    assert (
        f"stopped by SIGTERM after iteration 1's rationalize phase, in {out}, which is "
        f"consistent: `selftaught run --resume {out}` continues from there" in result.output
    )
    RunStore(out).verify(phase_outputs())
    monkeypatch.undo()
    resumed = runner.invoke(app, ["run", "--resume", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert signal.getsignal(signal.SIGTERM) is before  # put back as it was


def test_a_signal_during_a_finalizer_still_stops():
    """Python swallows an exception raised in __del__: the signal is delivered again."""

    class Slow:
        def __del__(self):
            time.sleep(0.3)  # the signal arrives in here

    with stop_signals_delivered(), pytest.raises(Stopped), stop_on_signals():
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGHUP)).start()
        slow = Slow()
        del slow
        time.sleep(5)


def test_an_ignored_signal_stays_ignored():
    """nohup ignores SIGHUP, a shell's background job SIGINT: whoever started us chose."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    before = signal.getsignal(signal.SIGTERM)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not before
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGHUP, previous)
