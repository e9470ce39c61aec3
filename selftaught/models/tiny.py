"""The built-in model: a small Llama with a character-level tokenizer, saved as a real
Hugging Face checkpoint so that it goes through exactly the code a real model does."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
CHARS = [chr(i) for i in range(32, 127)] + ["\n"]
MAX_POSITIONS = 1024  # prompt and completion together


def build_tokenizer(vocab_size: int | None = None) -> PreTrainedTokenizerFast:
    """One token per printable ASCII character: digits stay digits, so a model can learn
    columns. ``vocab_size``: padded with unused tokens to that size (a stand-in tokenizer
    for a real model's architecture in the speed benchmarks)."""
    names = SPECIALS + CHARS
    names += [f"<filler_{i}>" for i in range((vocab_size or 0) - len(names))]
    vocab = {token: i for i, token in enumerate(names)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def build_model(hidden_size: int, layers: int, heads: int, seed: int) -> LlamaForCausalLM:
    import torch

    tokenizer_size = len(SPECIALS) + len(CHARS)
    config = LlamaConfig(
        vocab_size=tokenizer_size,
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def save_new_tiny(path: Path, hidden_size: int, layers: int, heads: int, seed: int) -> Path:
    """A freshly initialised built-in model and its tokenizer, saved as safetensors."""
    model = build_model(hidden_size, layers, heads, seed)
    model.save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path
