"""Where a real-model LoRA train phase spends its time: SmolLM2-135M-Instruct, LoRA r=16,
trained as configs/star-smollm2-addition.yaml trains (question, rationale and answer,
batch 8, one micro-batch), under torch's profiler.

    nice -n 10 python benchmarks/real_model/train_profile.py [--steps 10] \
        [--way "autocast bf16, padding-free"]

(``--way``: one of lora_speed.py's ways, its HFTrainer settings over the config's.)

Prints tokens/s (the train loop's own timing, profiler on) and the operators that take
the most CPU time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from selftaught.models.pretrained import resolve_model
from selftaught.tasks.addition import AdditionTask

sys.path.insert(0, str(Path(__file__).parent))
from lora_speed import WAYS, examples, phase_trainer  # noqa: E402  (its table's settings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--way", choices=WAYS, default="float32")
    args = parser.parse_args()
    task = AdditionTask(1, 2, 64, 4, few_shot=8, format="columns")
    train = examples(task, task.train_problems())
    trainer = phase_trainer(args.way)
    model = resolve_model("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as out, torch.autograd.profiler.profile() as profile:
        result = trainer.fit(model, train, args.steps, Path(out), 0)
    print(
        f"{args.steps} steps of 8, {result.tokens // (args.steps * 8)} tokens an example: "
        f"{result.tokens_per_second:.0f} tokens/s with the profiler on"
    )
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
