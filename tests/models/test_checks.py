"""A bad model path is a message naming it, before any run directory is made."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.config import ConfigError
from selftaught.models.base_model import SHIPPED
from selftaught.models.checks import check_model

SHIPPED_M = next(p for p in SHIPPED.iterdir() if (p / "config.json").exists())


def broken(tmp_path: Path, how: str) -> Path:
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_M, model)
    weights = model / "model.safetensors"
    if how == "no config.json":
        (model / "config.json").unlink()
    elif how == "no tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (model / name).unlink(missing_ok=True)
    elif how == "only pytorch_model.bin":
        weights.rename(model / "pytorch_model.bin")
    elif how == "truncated safetensors":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "corrupt safetensors":
        weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!" + b"0" * 64)
    elif how == "no weights":
        weights.unlink()
    return model


CASES = {
    "no config.json": "no config.json",
    "no tokenizer": "no tokenizer",
    "only pytorch_model.bin": "pickled weights",
    "truncated safetensors": "truncated",
    "corrupt safetensors": "not a safetensors file",
    "no weights": "no weights",
}


@pytest.mark.parametrize("how", CASES)
def test_a_broken_checkpoint_is_named_with_what_is_wrong(tmp_path, how):
    with pytest.raises(ConfigError, match=CASES[how]):
        check_model(str(broken(tmp_path, how)))


def test_the_shipped_checkpoint_passes_and_missing_ones_do_not(tmp_path):
    check_model(str(SHIPPED_M))
    with pytest.raises(ConfigError, match="no such directory"):
        check_model(str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="is a file"):
        check_model(str(SHIPPED_M / "config.json"))


def test_an_uncached_hub_name_offline_fails_at_once(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    start = time.monotonic()
    with pytest.raises(ConfigError, match="cannot be reached"):
        check_model("someone/no-such-model-here")
    assert time.monotonic() - start < 5


def test_run_with_a_bad_model_leaves_no_run_directory(tmp_path):
    out = tmp_path / "run"
    model = broken(tmp_path, "no config.json")
    result = CliRunner().invoke(
        app, ["run", "--out", str(out), "--set", f"model.name_or_path={model}", "-q"]
    )
    assert result.exit_code == 2 and "no config.json" in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_sigterm_stops_a_run_with_the_resume_command(tmp_path, toy_raw):
    import yaml

    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump({**toy_raw, "iterations": 50}))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "selftaught", "run", str(config), "--out", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out / "iter_0001").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.terminate()
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert f"selftaught run --resume {out}" in output and "Traceback" not in output, output
