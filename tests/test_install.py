"""scripts/install.sh hands pip's settings to uv through scripts/uv_options.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load():
    spec = importlib.util.spec_from_file_location("uv_options", SCRIPTS / "uv_options.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


uv_options = _load().uv_options


def test_the_most_specific_scope_sets_the_index_and_lists_are_merged():
    listing = "\n".join(
        [
            "global.index-url='https://global.example/simple'",
            "site.index-url='https://site.example/simple'",
            "user.index-url='https://user.example/simple'",
            "global.extra-index-url='\\nhttps://a.example/simple\\nhttps://b.example/simple'",
            ":env:.extra-index-url='https://b.example/simple'",
            "global.find-links='/opt/wheels /srv/wheels'",
            "global.constraint='/etc/pins.txt'",
            "global.trusted-host='a.example'",
            "global.cert='/etc/ca.pem'",
            ":env:.default-timeout='180'",
            "not a setting",
        ]
    )
    assert uv_options(listing) == [
        "--index-url=https://site.example/simple",
        "--extra-index-url=https://b.example/simple",
        "--extra-index-url=https://a.example/simple",
        "--find-links=/opt/wheels",
        "--find-links=/srv/wheels",
        "--constraint=/etc/pins.txt",
        "--allow-insecure-host=a.example",
        "SSL_CERT_FILE=/etc/ca.pem",
    ]


def test_no_settings_no_options():
    assert uv_options("") == []


def test_pips_own_listing_a_variable_over_a_file(tmp_path):
    """What `pip config list` really prints, read back: PIP_INDEX_URL outranks the file."""
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://file.example/simple\n"
        "extra-index-url =\n    https://a.example/simple\n    https://b.example/simple\n"
    )
    env = {
        **os.environ,
        "PIP_CONFIG_FILE": str(config),
        "PIP_INDEX_URL": "https://env.example/simple",
    }
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    options = uv_options(listing)
    assert options[0] == "--index-url=https://env.example/simple"
    assert "--extra-index-url=https://a.example/simple" in options
    assert "--extra-index-url=https://b.example/simple" in options
    assert not any("file.example" in option for option in options)


def test_no_torch_and_no_pip_stops_before_installing_anything(tmp_path):
    """Without pip there is no knowing where torch's CPU build comes from (here, pip's
    find-links): rather than let uv take PyPI's CUDA build, the script stops and says so."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        ["bash", str(SCRIPTS / "install.sh")],
        # no uv on PATH or in the cache: nothing could be downloaded were the check gone
        env={
            **os.environ,
            "PYTHON": str(python),
            "PATH": "/usr/bin:/bin",
            "SELFTAUGHT_CACHE": str(tmp_path / "cache"),
        },
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "has neither torch nor pip" in done.stderr
    assert not list(venv.glob("lib/python*/site-packages/torch"))
