"""A real-model LoRA train phase in float32, under bfloat16 autocast, with the frozen
base held in bfloat16, without padding (packed rows attended sequence by sequence, or as
transformers masks one long row) and with eager attention, side by side.

SmolLM2-135M-Instruct, LoRA r=16 (the adapter stays float32 every way: peft keeps it so),
trained as configs/star-smollm2-addition.yaml trains (question, rationale and answer,
batch 8, one micro-batch), from the same seed on the same batches, alternating rounds, in
a process that keeps the memory torch frees, as `selftaught` runs (memory.py):

    nice -n 10 python benchmarks/real_model/lora_speed.py [--steps 20] [--rounds 2] \
        [--ways WAY ...] [--results lora_speed.json]

train_profile.py found the phase bound by float32 matrix products; a CPU with AVX512-BF16
(or AMX) multiplies bfloat16 2-3x faster. ``train.mixed_precision: bf16`` multiplies in
bfloat16 and keeps float32 weights (sampling unchanged); ``model.dtype: bfloat16`` holds
the base in bfloat16 for sampling too; ``train.padding_free: true`` trains each batch as
one packed row (24% of a padded batch of 8 is padding here), attended sequence by sequence
(models/packed_attention.py; "whole-row mask": transformers' own masking of the packed
row, as before it); ``train.attn_implementation: eager`` replaces sdpa's flash-attention
CPU kernel (its backward is slow in bf16) with transformers' plain products. Whether it
learns the same: the loss at each step, and every trained adapter's loss on held-out
examples computed in float32. Writes lora_speed.json beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from selftaught.config import LoraConfig
from selftaught.memory import keep_freed_memory
from selftaught.models.loading import load_model, load_tokenizer
from selftaught.models.pretrained import resolve_model
from selftaught.models.training import HFTrainer, collate, encode
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.base import Example

HERE = Path(__file__).parent
BASELINE = "float32"
WHOLE_ROW = "autocast bf16, padding-free, eager attention, whole-row mask"
FASTEST = "autocast bf16, padding-free, eager attention"
BF16_EAGER_PACKED = {
    "mixed_precision": "bf16",
    "padding_free": True,
    "attn_implementation": "eager",
}
# each way's HFTrainer settings over the config's (float32, one micro-batch, padded)
WAYS = {
    BASELINE: {},
    "autocast bf16": {"mixed_precision": "bf16"},
    "autocast bf16, eager attention": {"mixed_precision": "bf16", "attn_implementation": "eager"},
    "autocast bf16, padding-free": {"mixed_precision": "bf16", "padding_free": True},
    WHOLE_ROW: BF16_EAGER_PACKED,
    FASTEST: BF16_EAGER_PACKED,
    "bfloat16 weights, autocast, padding-free, eager attention": {
        "dtype": "bfloat16",
        **BF16_EAGER_PACKED,
    },
    # the config's way where the CPU has no bf16 (mixed_precision: auto resolves to no)
    "float32, padding-free, eager attention": {
        "padding_free": True,
        "attn_implementation": "eager",
    },
}


@contextlib.contextmanager
def as_before(way: str):
    """The whole-row way: the packed row masked by transformers, as the trainer ran it
    before packed_attention.py."""
    import selftaught.models.training as training

    saved = training.use_packed_attention
    if way == WHOLE_ROW:
        training.use_packed_attention = lambda model: False
    try:
        yield
    finally:
        training.use_packed_attention = saved


def examples(task: AdditionTask, problems) -> list[Example]:
    return [Example(task.train_prompt(p), task.reference(p)) for p in problems]


def held_out_loss(adapter: Path, held_out: list[Example]) -> float:
    """Mean completion-token loss of ``adapter`` merged onto the float32 base."""
    model = load_model(adapter, "float32").eval()
    tokenizer = load_tokenizer(adapter)
    input_ids, labels, mask = collate(
        [encode(tokenizer, e) for e in held_out], tokenizer.pad_token_id
    )
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.item()


def phase_trainer(way: str) -> HFTrainer:
    """The config's LoRA train phase (r=16, batch 8, one micro-batch) with ``way``'s
    settings over it."""
    lora = LoraConfig(r=16, alpha=32, dropout=0.0)
    return HFTrainer(batch_size=8, lr=3e-4, lora=lora, **{"micro_batches": 1, **WAYS[way]})


def one_phase(base: Path, name: str, train: list[Example], held_out, steps: int) -> dict:
    trainer = phase_trainer(name)
    losses: list[float] = []
    with tempfile.TemporaryDirectory() as out, as_before(name):
        result = trainer.fit(
            base, train, steps, Path(out), 0, progress=lambda _, loss: losses.append(loss)
        )
        held = held_out_loss(Path(out), held_out)
    return {
        "way": name,
        "tokens_per_second": round(result.tokens_per_second, 1),
        "seconds": round(result.seconds, 1),
        "peak_rss_mb": round(result.peak_rss_mb or 0),
        "losses": [round(x, 4) for x in losses],
        "held_out_loss": round(held, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="print only; write no JSON")
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=WAYS,
        default=list(WAYS),
        metavar="WAY",
        help="a subset of WAYS (float32 always)",
    )
    parser.add_argument("--results", type=Path, default=HERE / "lora_speed.json")
    args = parser.parse_args()
    ways = [BASELINE, *(w for w in args.ways if w != BASELINE)]
    keep_freed_memory()
    task = AdditionTask(1, 2, 64, 16, few_shot=8, format="columns")
    train = examples(task, task.train_problems())
    held_out = examples(task, task.eval_problems())
    base = resolve_model("smollm2-135m-instruct")
    load = os.getloadavg()
    began = time.perf_counter()
    rows = [
        one_phase(base, way, train, held_out, args.steps)
        for _ in range(args.rounds)
        for way in ways
    ]
    best = {w: max(r["tokens_per_second"] for r in rows if r["way"] == w) for w in ways}
    for r in rows:
        print(
            f"{r['way']:>60}: {r['tokens_per_second']:6.1f} tokens/s, peak RSS "
            f"{r['peak_rss_mb']} MB, last loss {r['losses'][-1]:.3f}, "
            f"held-out loss {r['held_out_loss']:.3f}"
        )
    ratios = {w: round(best[w] / best[BASELINE], 2) for w in best}
    print(f"tokens/s over float32's (best of {args.rounds} each): {ratios}")
    if not args.quick:
        record = {
            "command": "python " + " ".join(sys.argv),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_before": [round(x, 2) for x in load],
            "load_after": [round(x, 2) for x in os.getloadavg()],
            "minutes": round((time.perf_counter() - began) / 60, 1),
            "best_tokens_per_second": best,
            "ratio_to_float32": ratios,
            "rounds": rows,
        }
        args.results.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
