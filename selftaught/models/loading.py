"""Loading a checkpoint the same way for sampling and training: a full model or a LoRA
adapter (PEFT) on top of its base, in the dtype the config asks for."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).exists()


def adapter_base(path: str | Path) -> str:
    """The model an adapter was trained on, as PEFT recorded it."""
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def load_model(
    path: str | Path, dtype: str = "float32", quantize: str = "none", attention: str | None = None
) -> PreTrainedModel:
    """A causal LM ready to run; an adapter directory is loaded onto its base and merged,
    so sampling runs at the full model's speed. ``quantize`` (``4bit``, ``8bit``): the
    weights held by bitsandbytes, for QLoRA training under an adapter. ``attention``:
    transformers' ``attn_implementation`` (None: its default)."""
    if is_adapter(path):
        from peft import PeftModel

        base = load_model(adapter_base(path), dtype)
        return PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    extra = {}
    if quantize != "none":
        extra = {
            "quantization_config": bitsandbytes_config(quantize, dtype),
            "device_map": _device(),
        }
    # safetensors only: a pickle in an untrusted checkpoint would run code on load
    return AutoModelForCausalLM.from_pretrained(
        str(path),
        dtype=getattr(torch, dtype),
        attn_implementation=attention,
        use_safetensors=True,
        **extra,
    )


def bitsandbytes_config(quantize: str, dtype: str):
    """QLoRA's recipe: NF4 with double quantization, computing in the model's dtype."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ImportError(
            f"model.lora.quantize: {quantize} needs bitsandbytes: pip install 'selftaught[qlora]'"
        ) from None
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )


def _device() -> str:
    """Where a quantized model is put: bitsandbytes places it at load time, on this
    process's GPU under accelerate, else the CPU."""
    if torch.cuda.is_available():
        import os

        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return "cpu"


def unwrap_peft(model):
    """The model whose modules and config a PEFT model wraps, or ``model`` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def load_tokenizer(path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def render_prompt(tokenizer, text: str, chat_template: bool) -> str:
    """The task's plain-text prompt as the model expects it: inside its chat template (a
    user turn, then the assistant's turn opened) when asked for and the model has one."""
    if not chat_template or not getattr(tokenizer, "chat_template", None):
        return text
    messages = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


WHOLE_HASH_BYTES = 1 << 30  # larger weights are sampled: reading 15 GB on every resume is minutes
SAMPLED_BLOCKS, BLOCK = 64, 1 << 20


def weights_checksum(path: Path) -> str | None:
    """Of the saved weights, short: proves which checkpoint an iteration trained from
    (None for a hub name, whose files live in the hub's cache)."""
    return weights_digest(Path(path))[:24] if Path(path).is_dir() else None


def weights_digest(path: Path) -> str:
    """SHA-256 of every safetensors file in ``path`` (name, size, bytes); over 1 GiB, of
    each file's header and 64 blocks of 1 MiB spread over it: any other training run
    changes every block, and a resume does not wait minutes for the rest."""
    files = sorted(path.glob("*.safetensors"))
    whole = sum(f.stat().st_size for f in files) <= WHOLE_HASH_BYTES
    digest = hashlib.sha256(b"whole" if whole else b"sampled")
    for file in files:
        size = file.stat().st_size
        digest.update(f"{file.name}\0{size}\0".encode())
        with open(file, "rb") as f:
            if whole:
                while chunk := f.read(BLOCK):
                    digest.update(chunk)
                continue
            header = int.from_bytes(f.read(8), "little")  # tensor names, shapes, offsets
            digest.update(f.read(min(header, 100_000_000)))
            for i in range(SAMPLED_BLOCKS):
                f.seek(size * i // SAMPLED_BLOCKS)
                digest.update(f.read(BLOCK))
    return ("" if whole else "sampled:") + digest.hexdigest()
