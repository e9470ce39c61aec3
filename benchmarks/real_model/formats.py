"""Which few-shot format SmolLM2-135M-Instruct follows: greedy accuracy per digit count of
the addition task's formats (``task.format``), from the few-shot prompt, nothing trained.

    nice -n 10 python benchmarks/real_model/formats.py --problems 24 --few-shot 4

Writes formats.json beside this file (unless --quick); the table goes into README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from selftaught.models.pretrained import resolve_model
from selftaught.samplers.hf import HFSampler
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.addition_formats import FORMATS

HERE = Path(__file__).parent
# enough for each format's longest 2-digit rationale, and a little run-on
NEW_TOKENS = {"scratchpad": 90, "columns": 70, "place-value": 60, "direct": 12}


def measure(model: Path, fmt: str, few_shot: int, problems: int, digits: list[int], chat: bool):
    task = AdditionTask(
        min(digits), max(digits), 8, problems, seed=0, few_shot=few_shot, format=fmt
    )
    asked = [p for p in task.eval_problems() if int(p.bucket) in digits]
    sampler = HFSampler(
        model, batch_size=32, max_new_tokens=NEW_TOKENS[fmt], stop=task.stop, chat_template=chat
    )
    began = time.perf_counter()
    generations, stats = sampler.generate([task.prompt(p) for p in asked], 1, 0.0, 0)
    seconds = time.perf_counter() - began
    by_digits: dict[str, list[bool]] = {}
    for p, (g,) in zip(asked, generations, strict=True):
        by_digits.setdefault(p.bucket, []).append(task.is_correct(task.extract_answer(g.text), p))
    return {
        "format": fmt,
        "few_shot": few_shot,
        "chat_template": chat,
        "accuracy": {d: sum(v) / len(v) for d, v in sorted(by_digits.items())},
        "problems": {d: len(v) for d, v in sorted(by_digits.items())},
        "tokens": stats.tokens,
        "seconds": round(seconds, 1),
        "example": generations[-1][0].text,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS))
    parser.add_argument("--few-shot", type=int, nargs="+", default=[4])
    parser.add_argument("--problems", type=int, default=24, help="per digit count")
    parser.add_argument("--digits", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chat", action="store_true", help="inside the chat template")
    parser.add_argument("--quick", action="store_true", help="write nothing")
    args = parser.parse_args()
    model = resolve_model(args.model)
    rows = []
    for fmt in args.formats:
        for k in args.few_shot:
            row = measure(model, fmt, k, args.problems, args.digits, args.chat)
            print(json.dumps(row), flush=True)
            rows.append(row)
    if not args.quick:
        record = {
            "command": "python benchmarks/real_model/formats.py " + " ".join(os.sys.argv[1:]),
            "torch_threads": torch.get_num_threads(),
            "load": os.getloadavg(),
            "rows": rows,
        }
        out = HERE / ("formats-chat.json" if args.chat else "formats.json")
        out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
