"""Our sampler and trainer against the tools a user would reach for, in one run.

    python benchmarks/speed/run.py            # the full measurement; writes results.md
    python benchmarks/speed/run.py --quick    # a smoke run: small, fast, writes nothing

On the built-in model architecture (a Llama of d=128, 4 layers, 4 heads, ~1.1M
parameters; `--model DIR` takes a checkpoint instead, e.g. a cached base model M), briefly
trained first on worked 1-5 digit sums so that it writes scratchpads and stops at its
end-of-sequence token as M does. Side by side, as ratios:

(a) sampling: `HFSampler.generate` against plain `model.generate` with its default
    settings (default dynamic cache, greedy), as a user would write it: one prompt at a
    time, and in naive batches of the same size in the given order. Same prompts (addition
    sums of 1-5 digits), same `max_new_tokens`; tokens = generated tokens up to and
    including the end-of-sequence token, the ones a caller gets.
(b) training: `HFTrainer.fit` against TRL's `SFTTrainer` on the same examples, initial
    weights, batch size, steps, learning rate and cosine schedule; TRL both with its own
    defaults (bf16 autocast, gradient checkpointing) and matched to ours (fp32, none).
    Tokens = non-padding tokens of the batches trained on (both count them alike).
(c) model FLOPs utilisation of each: 6 * parameters * tokens/s for training, 2 * parameters
    * tokens/s for sampling (attention FLOPs left out, by convention), over this CPU's
    matmul peak measured here with a large square `torch.mm`: float32's, and bfloat16's
    for the rows that multiply in bfloat16 (ours with `train.mixed_precision: bf16`, TRL's
    defaults).

The process keeps the memory torch frees, as `selftaught` does
(`memory.keep_freed_memory`), for every contender alike (`allocator.py` measures that
setting itself). Each measurement is repeated `--rounds` times, alternating between the
contenders so that the load of a shared machine falls on all alike; the best round of each
counts.

Needs TRL, installed without letting it replace torch: `pip install trl torch==2.13.0`
(or whatever torch you have, pinned).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from selftaught.memory import keep_freed_memory
from selftaught.models.loading import load_model, load_tokenizer
from selftaught.models.tiny import save_new_tiny
from selftaught.models.training import HFTrainer
from selftaught.samplers.hf import HFSampler, _generated_length
from selftaught.tasks import AdditionTask

HERE = Path(__file__).parent


# -- (c) the machine's peak ------------------------------------------------------------------
def matmul_peak(n: int, repeats: int, dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of an n x n matmul on this CPU with torch's default threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)  # warm-up
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def matmul_peaks(n: int, rounds: int) -> dict[torch.dtype, float]:
    """The best of ``rounds`` measurements of each dtype's peak."""
    return {
        dtype: best([matmul_peak(n, 5, dtype) for _ in range(rounds)])
        for dtype in (torch.float32, torch.bfloat16)
    }


# -- the model ---------------------------------------------------------------------------------
def bench_model(work: Path, args, task: AdditionTask) -> Path:
    if args.model:
        return Path(args.model)
    init = save_new_tiny(work / "init", 128, 4, 4, seed=0)
    if not args.warmup_steps:
        return init
    examples = task.seed_examples(4000, task.sizes, 0.0, salt="speed-warmup")
    print(f"warm-up: training the built-in model {args.warmup_steps} steps", flush=True)

    def report(step: int, loss: float) -> None:
        if step % 50 == 0:
            print(f"warm-up: step {step}, loss {loss:.3f}", flush=True)

    result = HFTrainer(batch_size=32, lr=2e-3).fit(
        init, examples, args.warmup_steps, work / "model", seed=0, progress=report
    )
    print(f"warm-up: loss {result.loss:.3f}, {result.tokens_per_second:,.0f} tokens/s", flush=True)
    return work / "model"


# -- (a) sampling ------------------------------------------------------------------------------
def ours_sampling(path: Path, prompts: list[str], batch: int, new_tokens: int):
    sampler = HFSampler(path, batch_size=batch, max_new_tokens=new_tokens)
    generations, stats = sampler.generate(prompts, 1, 0.0, 0)
    return stats.tokens, stats.seconds, [g[0].text for g in generations]


def plain_generate(path: Path, prompts: list[str], batch: int, new_tokens: int):
    """What a user writes: model.generate with its defaults, ``batch`` prompts at a time."""
    model, tokenizer = load_model(path).eval(), load_tokenizer(path)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    tokens, texts = 0, []
    start = time.perf_counter()
    for b in range(0, len(prompts), batch):
        enc = tokenizer(
            prompts[b : b + batch], return_tensors="pt", padding=True, add_special_tokens=False
        )
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False)
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            count = _generated_length(row, eos, pad)
            tokens += count
            texts.append(tokenizer.decode(row[:count], skip_special_tokens=True))
    return tokens, time.perf_counter() - start, texts


# -- (b) training ------------------------------------------------------------------------------
def ours_training(init: Path, examples, args, out: Path, **settings):
    """``settings``: HFTrainer's, over its defaults."""
    trainer = HFTrainer(batch_size=args.batch, lr=args.lr, warmup_ratio=0.05, **settings)
    result = trainer.fit(init, examples, args.train_steps, out, seed=0)
    return result.tokens, result.seconds


def trl_training(init: Path, examples, args, out: Path, matched: bool):
    """TRL's SFTTrainer on prompt-completion rows (loss on the completion, as ours)."""
    import datasets
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    datasets.disable_progress_bars()

    class Clock(TrainerCallback):  # the training loop only, as HFTrainer times its own
        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_train_end(self, *a, **k):
            self.seconds = time.perf_counter() - self.start

    rows = [{"prompt": e.prompt, "completion": e.completion} for e in examples]
    options = dict(
        output_dir=str(out),
        per_device_train_batch_size=args.batch,
        max_steps=args.train_steps,
        learning_rate=args.lr,
        lr_scheduler_type="cosine",
        warmup_steps=math.ceil(0.05 * args.train_steps),
        weight_decay=0.0,
        adam_beta2=0.98,
        max_grad_norm=1.0,
        save_strategy="no",
        report_to="none",
        logging_steps=args.train_steps,
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
    )
    if matched:
        options.update(bf16=False, gradient_checkpointing=False)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    clock = Clock()
    trainer = SFTTrainer(
        model=load_model(init),
        args=SFTConfig(**options),
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=load_tokenizer(init),
        callbacks=[clock],
    )
    trainer.remove_callback(PrinterCallback)  # its per-log dicts, not ours to print
    trainer.train()
    return trainer._total_train_tokens, clock.seconds


ONE_PADDED_BATCH = "ours, one padded batch per step (micro_batches=1)"
OURS_BF16 = "ours, bf16 autocast (train.mixed_precision: bf16)"
OURS_BF16_EAGER = "ours, bf16 autocast, eager attention (the main command's, on this CPU)"
PADDING_FREE = "ours, padding-free (train.padding_free: true)"
# each row's HFTrainer settings over the defaults (4 length-sorted micro-batches, float32)
OURS = {
    "ours": {},
    ONE_PADDED_BATCH: {"micro_batches": 1},
    PADDING_FREE: {"padding_free": True},
    OURS_BF16: {"mixed_precision": "bf16"},
    OURS_BF16_EAGER: {"mixed_precision": "bf16", "attn_implementation": "eager"},
}
TRL_MATCHED = "TRL SFTTrainer, matched (fp32)"
TRL_DEFAULTS = "TRL SFTTrainer, defaults (bf16, grad. checkpointing)"
TRL = {TRL_MATCHED: True, TRL_DEFAULTS: False}  # row: settings matched to ours
BF16_ROWS = (OURS_BF16, OURS_BF16_EAGER, TRL_DEFAULTS)  # their MFU is over the bfloat16 peak


# -- the run -------------------------------------------------------------------------------------
def best(rates: list[float]) -> float:
    return max(rates) if rates else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; results.md untouched")
    parser.add_argument("--model", help="a checkpoint to use instead of the warmed-up built-in")
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--single", type=int, default=64, help="prompts for one-at-a-time")
    parser.add_argument("--sample-batch", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32, help="training batch size")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--peak-size", type=int, default=2048)
    args = parser.parse_args()
    args.kept_memory = keep_freed_memory()
    if args.quick:
        args.warmup_steps, args.prompts, args.single = 20, 32, 8
        args.sample_batch, args.new_tokens, args.train_steps = 32, 48, 4
        args.rounds, args.peak_size = 1, 512
    command = "python benchmarks/speed/run.py " + " ".join(sys.argv[1:])
    load_before = os.getloadavg()
    began = time.perf_counter()

    peaks = matmul_peaks(args.peak_size, args.rounds)
    print(f"peaks: {_peaks(peaks)} ({args.peak_size}^2 matmul)", flush=True)

    task = AdditionTask(1, 5, train_size=args.prompts, seed=0)
    prompts = [task.prompt(p) for p in task.train_problems()]  # digit counts interleaved
    single = prompts[:: max(1, len(prompts) // args.single)][: args.single]
    examples = task.seed_examples(2048, task.sizes, 0.0, salt="speed-train")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = bench_model(work, args, task)
        params = sum(p.numel() for p in load_model(model).parameters())
        tokenizer = load_tokenizer(model)
        prompt_tokens = statistics.mean(len(tokenizer(p)["input_ids"]) for p in prompts)

        sampling: dict[str, list[float]] = {"ours": [], "plain, one prompt at a time": []}
        sampling["plain, naive batches"] = []
        lengths: dict[str, float] = {}
        agree = None
        for r in range(args.rounds):
            tokens, seconds, ours_text = ours_sampling(
                model, prompts, args.sample_batch, args.new_tokens
            )
            sampling["ours"].append(tokens / seconds)
            lengths["ours"] = tokens / len(prompts)
            tokens, seconds, single_text = plain_generate(model, single, 1, args.new_tokens)
            sampling["plain, one prompt at a time"].append(tokens / seconds)
            lengths["plain, one prompt at a time"] = tokens / len(single)
            tokens, seconds, _ = plain_generate(model, prompts, args.sample_batch, args.new_tokens)
            sampling["plain, naive batches"].append(tokens / seconds)
            lengths["plain, naive batches"] = tokens / len(prompts)
            index = {p: t for p, t in zip(prompts, ours_text, strict=True)}
            agree = sum(index[p] == t for p, t in zip(single, single_text, strict=True))
            print(f"sampling round {r + 1}: " + _rates(sampling), flush=True)

        training: dict[str, list[float]] = {name: [] for name in (*OURS, *TRL)}
        errors: dict[str, str] = {}
        for r in range(args.rounds):
            for name, settings in OURS.items():
                tokens, seconds = ours_training(model, examples, args, work / "ours", **settings)
                training[name].append(tokens / seconds)
            for name, matched in TRL.items():
                try:
                    tokens, seconds = trl_training(model, examples, args, work / "trl", matched)
                    training[name].append(tokens / seconds)
                except Exception as err:  # noqa: BLE001 - reported in the table, not hidden
                    errors[name] = f"{type(err).__name__}: {err}"[:200]
            print(f"training round {r + 1}: " + _rates(training), flush=True)

    # again at the end, so that a load that eased mid-run cannot make MFU exceed what was
    # truly available (the peak is the best seen at either end)
    at_end = matmul_peaks(args.peak_size, args.rounds)
    peaks = {dtype: max(peak, at_end[dtype]) for dtype, peak in peaks.items()}
    minutes = (time.perf_counter() - began) / 60
    load_after = os.getloadavg()
    text = results_markdown(
        command=command,
        args=args,
        peaks=peaks,
        params=params,
        prompt_tokens=prompt_tokens,
        sampling=sampling,
        lengths=lengths,
        agree=(agree, len(single)),
        training=training,
        errors=errors,
        loads=(load_before, load_after),
        minutes=minutes,
    )
    print(text)
    if not args.quick:
        results = HERE / "results.md"
        results.write_text(text + hand_written_notes(results))


def hand_written_notes(results: Path) -> str:
    """The "## Notes" section of the results file as it is, which the script does not
    write and a rerun must not erase (its figures are to be checked against the new run)."""
    if not results.exists():
        return ""
    text = results.read_text()
    at = text.find("\n## Notes")
    return text[at:] if at >= 0 else ""


def _peaks(peaks: dict) -> str:
    return ", ".join(
        f"{str(d).removeprefix('torch.')} {p / 1e9:.1f} GFLOP/s" for d, p in peaks.items()
    )


def _rates(table: dict[str, list[float]]) -> str:
    return "; ".join(f"{k} {best(v):,.0f} tokens/s" for k, v in table.items())


def results_markdown(
    *,
    command,
    args,
    peaks,
    params,
    prompt_tokens,
    sampling,
    lengths,
    agree,
    training,
    errors,
    loads,
    minutes,
) -> str:
    cpu = _cpu_name()
    ours_s, ours_t = best(sampling["ours"]), best(training["ours"])

    def mfu(rate: float, factor: int, dtype=torch.float32) -> str:
        return f"{100 * factor * params * rate / peaks[dtype]:.2f}%"

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:,.0f}" for v in values)

    lines = [
        "# Speed: our sampler and trainer against plain `generate` and TRL",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} in {minutes:.1f} min on {cpu}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, Python {platform.python_version()}"
        + (", glibc keeping freed memory as `selftaught` does" if args.kept_memory else "")
        + f". Load average (1, 5, 15 min) before: "
        f"{_load(loads[0])}; after: {_load(loads[1])}.",
        "",
        f"Model: {'`' + str(args.model) + '`' if args.model else 'the built-in architecture'} "
        f"({params:,} parameters)"
        + (
            ""
            if args.model
            else f", trained {args.warmup_steps} steps on worked 1-5 digit sums first"
        )
        + f". Matmul peaks of this CPU ({args.peak_size}x{args.peak_size}, best of "
        f"{10 * args.rounds}, at the start and the end): **{_peaks(peaks)}**. "
        f"Best of {args.rounds} alternating rounds per row.",
        "",
        "## (a) Sampling",
        "",
        f"{args.prompts} addition prompts (1-5 digits, {prompt_tokens:.0f} tokens on average), "
        f"greedy, max_new_tokens={args.new_tokens}; one prompt at a time on every "
        f"{max(1, args.prompts // args.single)}th prompt ({args.single} prompts, all digit "
        f"counts); batches of {args.sample_batch}. Tokens per prompt = generated tokens "
        "including the end-of-sequence token.",
        "",
        "| sampler | tokens/s (best) | every round | tokens per prompt | ours / this | MFU |",
        "|---|---|---|---|---|---|",
    ]
    for name, rates in sampling.items():
        lines.append(
            f"| {name} | {best(rates):,.0f} | {rounds(rates)} | {lengths.get(name, 0):.1f} | "
            f"{ours_s / best(rates):.2f}x | {mfu(best(rates), 2)} |"
        )
    lines += [
        "",
        f"Same greedy text from ours and from one-prompt-at-a-time `generate` on "
        f"{agree[0]} of {agree[1]} prompts.",
        "",
        "## (b) Training",
        "",
        f"{args.train_steps} steps, batch {args.batch}, lr {args.lr:g}, cosine schedule with "
        "5% warm-up, AdamW (beta2 0.98), grad-norm clip 1.0, on 2,048 worked 1-5 digit sums "
        "(prompt-completion, loss on the completion), from the same weights. Time = the "
        "training loop (ours: `TrainResult.seconds`; TRL: `on_train_begin` to "
        "`on_train_end`); tokens = non-padding tokens trained on.",
        "",
        "| trainer | tokens/s (best) | every round | ours / this | MFU |",
        "|---|---|---|---|---|",
    ]
    for name, rates in training.items():
        if name in errors and not rates:
            lines.append(f"| {name} | failed: {errors[name]} | | | |")
            continue
        dtype = torch.bfloat16 if name in BF16_ROWS else torch.float32
        lines.append(
            f"| {name} | {best(rates):,.0f} | {rounds(rates)} | {ours_t / best(rates):.2f}x | "
            f"{mfu(best(rates), 6, dtype)} |"
        )
    plain_batches = best(sampling["plain, naive batches"])
    plain_single = best(sampling["plain, one prompt at a time"])
    trl = best(training[TRL_MATCHED])
    lines += [
        "",
        "## Summary",
        "",
        f"- sampling: ours / plain `generate` one prompt at a time = "
        f"**{ours_s / plain_single:.2f}x**; ours / plain naive batches = "
        f"**{ours_s / plain_batches:.2f}x** (target >= 3x)",
        f"- training: ours / TRL `SFTTrainer` matched = **{ours_t / trl:.2f}x** (target >= 1.0x); "
        f"ours / one padded batch per step = **{ours_t / best(training[ONE_PADDED_BATCH]):.2f}x**; "
        f"padding-free / ours = **{best(training[PADDING_FREE]) / ours_t:.2f}x**; "
        f"ours in bf16 autocast / ours = **{best(training[OURS_BF16]) / ours_t:.2f}x**; "
        f"in bf16 autocast with eager attention / ours = "
        f"**{best(training[OURS_BF16_EAGER]) / ours_t:.2f}x**",
        f"- MFU: sampling {mfu(ours_s, 2)}, training {mfu(ours_t, 6)} of the float32 peak; "
        f"training in bf16 autocast {mfu(best(training[OURS_BF16]), 6, torch.bfloat16)}, "
        f"with eager attention {mfu(best(training[OURS_BF16_EAGER]), 6, torch.bfloat16)} of "
        "the bfloat16 peak",
        "",
    ]
    return "\n".join(lines)


def _load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "an unknown CPU"


if __name__ == "__main__":
    main()
