"""models/check.py: a broken checkpoint is named with what is wrong with it; a packaged
short name passes to its conversion, or names the package to install. (The CLI's side of
it, no run directory left, is in tests/test_user_errors.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from selftaught.config import ConfigError
from selftaught.models import pretrained
from selftaught.models.base_model import SHIPPED
from selftaught.models.check import check_model

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
    "only pytorch_model.bin": "PyTorch pickle",
    "truncated safetensors": "truncated",
    "corrupt safetensors": "header is not readable",
    "no weights": "the weights are missing",
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


def test_a_packaged_name_passes_or_names_its_package(monkeypatch):
    name = next(iter(pretrained.PACKAGED))
    packaged = pretrained.PACKAGED[name]
    monkeypatch.setattr(type(packaged), "gguf_path", lambda self: None)
    with pytest.raises(ConfigError, match="package is not installed") as err:
        check_model(name)
    assert packaged.pip in str(err.value)
    monkeypatch.setattr(type(packaged), "gguf_path", lambda self: Path("/x/model.gguf"))
    check_model(name.upper())  # names are not case-sensitive
    check_model("/anywhere/model.gguf")  # checked by its conversion
