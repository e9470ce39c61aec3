"""models/check.py: a packaged short name passes to its conversion, or names the package
to install. (Each broken checkpoint, through the CLI, is in tests/test_user_errors.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from selftaught.config import ConfigError
from selftaught.models import pretrained
from selftaught.models.base_model import SHIPPED
from selftaught.models.check import check_model

SHIPPED_M = next(p for p in SHIPPED.iterdir() if (p / "config.json").exists())


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
