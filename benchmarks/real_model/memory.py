"""Peak RSS of a real-model LoRA train phase (SmolLM2-135M-Instruct), each way in a fresh
process: logits over every position (the model's own loss) or at completion positions only
(the trainer's default for a large vocabulary), with and without gradient checkpointing,
and as configs/star-smollm2-addition.yaml trains (no exemplars in the examples).

    nice -n 10 python benchmarks/real_model/memory.py

The first three train on the 8-exemplar few-shot prompt (task.train_exemplars: true), the
long-prompt case; batch 8, one micro-batch, 3 steps (the peak comes in the first). The peak
is VmHWM, reset when the train phase starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
STEPS = 3


MODES = {  # name: (logits at completion positions only, checkpointing, exemplars trained on)
    "every position": (False, False, True),
    "completion positions": (True, False, True),
    "completion positions, gradient checkpointing": (True, True, True),
    "the config's: no exemplars trained on": (True, False, False),
}


def child(mode: str) -> dict:
    from selftaught.config import LoraConfig
    from selftaught.models import training
    from selftaught.models.pretrained import resolve_model
    from selftaught.tasks.addition import AdditionTask
    from selftaught.tasks.base import Example

    sparse, checkpointing, exemplars = MODES[mode]
    if not sparse:
        training.SPARSE_LOGITS_VOCAB = 1 << 60
    task = AdditionTask(1, 2, 16, 4, few_shot=8, format="columns", train_exemplars=exemplars)
    examples = [Example(task.train_prompt(p), task.reference(p)) for p in task.train_problems()]
    trainer = training.HFTrainer(
        batch_size=8,
        lr=3e-4,
        lora=LoraConfig(r=16, alpha=32, dropout=0.0),
        micro_batches=1,
        gradient_checkpointing=checkpointing,
    )
    with tempfile.TemporaryDirectory() as out:
        result = trainer.fit(resolve_model("smollm2-135m-instruct"), examples, STEPS, Path(out), 0)
    return {
        "mode": mode,
        "peak_rss_mb": result.peak_rss_mb,
        "tokens_per_second": round(result.tokens_per_second),
        "loss": round(result.loss, 4),
        "tokens_per_example": result.tokens // (STEPS * 8),
    }


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(child(sys.argv[1])))
        return
    rows = []
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, __file__, mode], capture_output=True, text=True, check=True
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    (HERE / "memory.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
