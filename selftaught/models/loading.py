"""Loading a checkpoint the same way for sampling and training."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel


def load_model(path: str | Path) -> PreTrainedModel:
    # safetensors only: a pickle in an untrusted checkpoint would run code on load
    model = AutoModelForCausalLM.from_pretrained(
        str(path), dtype=torch.float32, use_safetensors=True
    )
    return model


def load_tokenizer(path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
