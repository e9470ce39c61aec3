"""Our sampler and trainer on a GPU, against plain `model.generate`, in one timed run.

    python benchmarks/speed/gpu.py --out DIR --budget 330                       # ~5 min
    python benchmarks/speed/gpu.py --out DIR --budget 260 --parts smol-bfloat16  # ~3 min
    python benchmarks/speed/gpu.py --quick --out DIR     # a smoke run (CPU too): small, fast
    python benchmarks/speed/gpu.py --report DIR/results.json   # the tables, as markdown

The first two are the commands of results-gpu.md, on an H200: within 330 s the first one
measured every part but the bf16 one, which the compilations had pushed past its budget,
so the second ran that alone. `--budget 480` would take all of it in one call.

The CPU benchmark (`run.py`) measures one model on one device with TRL beside it; here the
questions differ (compiled static-cache decoding, two dtypes, two models, cold and warm
calls), so this is its own script. It writes every measurement to DIR/results.json as
soon as it is taken, so a run stopped at its limit still leaves what it measured, and it
skips what would not finish before `--budget` seconds.

What it measures, on CUDA:

1. Sampling on the built-in model architecture (d=128, 4 layers, 4 heads), trained
   `--warmup-steps` steps on worked 1-5 digit sums first as run.py does (so that rows stop
   at their end-of-sequence token), on 256 addition prompts, greedy, 200 new tokens:
   - `HFSampler` as shipped (it loads the model with `load_model`, on the CPU, and never
     moves it: on a GPU machine it samples on the CPU);
   - `HFSampler` on CUDA: the same object with its model moved to the GPU and its
     tokenizer's tensors sent there (`on_device`, below): its own batching, length sort
     and static KV cache, which `generate` compiles (torch.compile, "reduce-overhead":
     CUDA graphs) on CUDA by default. Its first call (compilation included) is reported
     apart from the warm calls;
   - plain `model.generate` in naive batches with its default dynamic cache, with a static
     cache (compiled, as HF does by default on CUDA), and with a static cache not compiled
     (`disable_compile=True`); and one prompt at a time on a few prompts.
2. The same on a model of SmolLM2-135M's config (Llama, d=576, 30 layers, 9 heads, 3 KV
   heads, vocabulary 49,152, tied embeddings) with random weights, in bfloat16 and float32:
   160-token prompts, 128 new tokens, batch 16 and batch 128 greedy, and K=4 samples at
   T=0.8 (32 prompts x 4 in batches of 128). Its tokenizer is the built-in one's
   characters padded with filler tokens to 49,152 (one token per character), so prompts of
   160 characters are 160 tokens; speed does not depend on which ids are fed.
3. Training the built-in model with `HFTrainer.fit` (through accelerate, on the GPU):
   batch 32 with 4 micro-batches (the default) and with 1, and batch 256.

Tokens/s counts generated tokens up to and including the end-of-sequence token (all of
them, where a row never ends), or the non-padding tokens trained on. MFU = 2 (sampling) or
6 (training) x parameters x tokens/s over this GPU's measured matmul peak in the model's
dtype (an 8192^3 `torch.mm` on random data; float32 without TF32, torch's default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import transformers

from selftaught.models.tiny import build_tokenizer, save_new_tiny
from selftaught.models.training import HFTrainer
from selftaught.samplers.hf import HFSampler, _generated_length
from selftaught.tasks import AdditionTask

HERE = Path(__file__).parent
PARTS = ("tiny", "train", "smol-float32", "smol-bfloat16", "smol-cpu")
GIB = 2**30

SMOLLM2_135M = dict(  # HuggingFaceTB/SmolLM2-135M's config.json, ids ours
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    initializer_range=0.041666666666666664,
    tie_word_embeddings=True,
    hidden_act="silu",
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)


class Run:
    """The records so far, written out after each one; the clock against the budget."""

    def __init__(self, out: Path, budget: float, meta: dict):
        self.out, self.budget, self.began = out, budget, time.perf_counter()
        self.records: list[dict] = []
        self.meta = meta
        out.mkdir(parents=True, exist_ok=True)
        self.save()

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.began)

    def add(self, **record) -> None:
        record["at_s"] = round(time.perf_counter() - self.began, 1)
        self.records.append(record)
        rate = record.get("tokens_per_s")
        print(
            f"[{record['at_s']:6.1f}s] {record['section']} | {record.get('contender', '')} | "
            + (f"{rate:,.0f} tok/s" if rate else record.get("error", record.get("note", "")))
            + (f" | {record['seconds']:.2f}s" if "seconds" in record else "")
            + (f" | peak {record['peak_gib']:.2f} GiB" if record.get("peak_gib") else ""),
            flush=True,
        )
        self.save()

    def save(self) -> None:
        self.meta["elapsed_s"] = round(time.perf_counter() - self.began, 1)
        data = {"meta": self.meta, "records": self.records}
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.out / "results.json")


# -- the GPU ---------------------------------------------------------------------------------
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / GIB if torch.cuda.is_available() else None


def matmul_peak(dtype: torch.dtype, n: int, repeats: int = 10) -> dict:
    """Best and median FLOP/s of an n^3 matmul in ``dtype`` on random data (CUDA events)."""
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.mm(a, b)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    flops = 2 * n**3
    return {"best": flops / times[0], "median": flops / times[len(times) // 2], "n": n}


# -- samplers ----------------------------------------------------------------------------------
class _OnDevice:
    """A tokenizer whose tensors land on ``device``; everything else is the tokenizer's."""

    def __init__(self, tokenizer, device):
        self._tokenizer, self._device = tokenizer, device

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        out = self._tokenizer(*args, **kwargs)
        return out.to(self._device) if kwargs.get("return_tensors") else out


def on_device(sampler: HFSampler, device: str) -> HFSampler:
    """``sampler`` running on ``device``: its model moved there, its inputs sent there."""
    sampler.model.to(device)
    sampler.tokenizer = _OnDevice(sampler.tokenizer, device)
    return sampler


def raw_tokenizer(sampler: HFSampler):
    tok = sampler.tokenizer
    return tok._tokenizer if isinstance(tok, _OnDevice) else tok


def ours(sampler: HFSampler, prompts, batch, k, temperature):
    sampler.batch_size = batch
    sync()
    _, stats = sampler.generate(prompts, k, temperature, 0)
    sync()
    return stats.tokens, stats.seconds


def plain(model, tokenizer, prompts, batch, k, temperature, new_tokens, **options):
    """What a user writes: ``model.generate`` on ``batch`` rows at a time in the given order
    (each prompt ``k`` times in a row), tokens counted as the sampler counts them."""
    rows = [p for p in prompts for _ in range(k)]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    sample = temperature > 0
    device = model.device
    tokens = 0
    sync()
    start = time.perf_counter()
    with torch.inference_mode():
        for b in range(0, len(rows), batch):
            enc = tokenizer(
                rows[b : b + batch], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            out = model.generate(
                **enc,
                max_new_tokens=new_tokens,
                do_sample=sample,
                temperature=temperature if sample else None,
                top_p=1.0 if sample else None,
                top_k=None,
                pad_token_id=pad,
                eos_token_id=eos,
                **options,
            )
            for row in out[:, enc["input_ids"].shape[1] :].tolist():
                tokens += _generated_length(row, eos, pad)
    sync()
    return tokens, time.perf_counter() - start


def sampling_contenders(sampler, new_tokens: int) -> dict:
    model, tokenizer = sampler.model, raw_tokenizer(sampler)

    def plain_with(**options):
        return lambda prompts, batch, k, t: plain(
            model, tokenizer, prompts, batch, k, t, new_tokens, **options
        )

    return {
        "ours (HFSampler) on CUDA": lambda *case: ours(sampler, *case),
        "plain generate, static cache (compiled)": plain_with(cache_implementation="static"),
        "plain generate, static cache, not compiled": plain_with(
            cache_implementation="static", disable_compile=True
        ),
        "plain generate, dynamic cache (default)": plain_with(),
    }


def measure(
    run: Run,
    section: str,
    name: str,
    fn,
    *,
    rows: int,
    params: int,
    peak: float,
    extra: dict,
    phase: str = "warm",
    round_: int = 0,
) -> float | None:
    reset_peak()
    try:
        tokens, seconds = fn()
    except Exception as err:  # noqa: BLE001 - recorded in the table, the run goes on
        traceback.print_exc()
        run.add(
            section=section,
            contender=name,
            phase=phase,
            round=round_,
            error=f"{type(err).__name__}: {err}"[:300],
            **extra,
        )
        return None
    rate = tokens / seconds
    run.add(
        section=section,
        contender=name,
        phase=phase,
        round=round_,
        tokens=tokens,
        seconds=round(seconds, 4),
        tokens_per_s=rate,
        tokens_per_row=tokens / rows,
        mfu=2 * params * rate / peak if peak else None,
        peak_gib=peak_gib(),
        **extra,
    )
    return rate


def sampling_block(run, section, sampler, cases, *, params, peak, new_tokens, rounds, need=20.0):
    """Each case: the sampler's first call on it (cold: compilation), then ``rounds``
    alternating rounds of every contender."""
    contenders = sampling_contenders(sampler, new_tokens)
    for case in cases:
        if run.left() < need:
            run.add(section=section, contender="*", note=f"skipped {case['label']}: budget")
            continue
        prompts, batch, k, t = case["prompts"], case["batch"], case["k"], case["t"]
        extra = dict(
            case=case["label"],
            batch=batch,
            k=k,
            temperature=t,
            prompts=len(prompts),
            new_tokens=new_tokens,
        )
        rows = len(prompts) * k
        args = (prompts, batch, k, t)
        name = "ours (HFSampler) on CUDA"
        rate = measure(
            run,
            section,
            name,
            lambda: contenders[name](*args),  # noqa: B023 - called here
            rows=rows,
            params=params,
            peak=peak,
            extra=extra,
            phase="first call",
        )
        if rate is None and not sampler.model.generation_config.disable_compile:
            print("compiled generate failed: the rest runs uncompiled", flush=True)
            sampler.model.generation_config.disable_compile = True
            run.add(section=section, contender="*", note="compile failed; uncompiled from here")
        for r in range(rounds):
            if r and run.left() < need:
                run.add(
                    section=section,
                    contender="*",
                    note=f"round {r + 1} of {case['label']} skipped: budget",
                )
                break
            for cname, fn in contenders.items():
                if cname in case.get("skip", ()):
                    continue
                measure(
                    run,
                    section,
                    cname,
                    lambda fn=fn, args=args: fn(*args),
                    rows=rows,
                    params=params,
                    peak=peak,
                    extra=extra,
                    round_=r + 1,
                )


# -- models ------------------------------------------------------------------------------------
def smol_tokenizer(path: Path):
    """The built-in character tokenizer padded with filler tokens to SmolLM2's vocabulary."""
    build_tokenizer(SMOLLM2_135M["vocab_size"]).save_pretrained(path)


def save_smol(path: Path, layers: int) -> int:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**SMOLLM2_135M, "num_hidden_layers": layers})
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    smol_tokenizer(path)
    return sum(p.numel() for p in model.parameters())


def smol_prompts(count: int, length: int) -> list[str]:
    """Few-shot-like text, exactly ``length`` characters (= tokens) each."""
    rng = random.Random(0)
    alphabet = "0123456789 +=,\n" + "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(count)]


# -- the run -------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="where results.json goes")
    parser.add_argument("--report", type=Path, help="print a results.json as markdown tables")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=330.0, help="seconds; later parts skip")
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"which parts to run, comma-separated, of {','.join(PARTS)}",
    )
    parser.add_argument("--smol-layers", type=int, default=SMOLLM2_135M["num_hidden_layers"])
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    if args.out is None:
        parser.error("--out DIR is needed")
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"--parts: unknown {sorted(parts - set(PARTS))}; expected some of {PARTS}")
    tiny_prompts, tiny_new, single = 256, 200, 8
    smol_len, smol_new, smol_cpu_prompts = 160, 128, 16
    train_steps = 40
    if args.quick:
        args.warmup_steps, args.rounds, args.smol_layers = 4, 1, 2
        tiny_prompts, tiny_new, single = 16, 8, 2
        smol_len, smol_new, smol_cpu_prompts, train_steps = 16, 4, 2, 2
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    if cuda:
        # the compiled forward is one code object for every model instance of this run:
        # leave room for its recompilations, which would otherwise fall back to eager silently
        import torch._dynamo as dynamo

        for names, value in (
            (("recompile_limit", "cache_size_limit"), 64),
            (("accumulated_recompile_limit", "accumulated_cache_size_limit"), 1024),
        ):
            for name in names:
                if hasattr(dynamo.config, name):
                    setattr(dynamo.config, name, value)
                    break
    meta = {
        "command": "python benchmarks/speed/gpu.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    run = Run(args.out, args.budget, meta)
    peaks = {}
    if cuda:
        n = 1024 if args.quick else 8192
        for name, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
            peaks[name] = matmul_peak(dtype, n)
            print(f"peak {name}: {peaks[name]['best'] / 1e12:.1f} TFLOP/s", flush=True)
        meta["peaks"] = peaks
        meta["gpu_memory_gib"] = torch.cuda.get_device_properties(0).total_memory / GIB
        run.save()
    peak_of = {k: v["best"] for k, v in peaks.items()}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # -- 1. the built-in model: warm-up training (on the GPU, via accelerate) ----------
        if parts & {"tiny", "train"}:
            task = AdditionTask(1, 5, train_size=tiny_prompts, seed=0)
            prompts = [task.prompt(p) for p in task.train_problems()]
            init = save_new_tiny(work / "init", 128, 4, 4, seed=0)
            model_dir = work / "tiny"
            reset_peak()
            warm = HFTrainer(batch_size=32, lr=2e-3).fit(
                init,
                task.seed_examples(4000, task.sizes, 0.0, salt="speed-warmup"),
                args.warmup_steps,
                model_dir,
                seed=0,
            )
            tiny_sampler = HFSampler(model_dir, batch_size=tiny_prompts, max_new_tokens=tiny_new)
            tiny_params = sum(p.numel() for p in tiny_sampler.model.parameters())
            meta["tiny_params"] = tiny_params
            run.add(
                section="train tiny",
                contender="warm-up: HFTrainer batch 32, micro_batches 4",
                tokens=warm.tokens,
                seconds=warm.seconds,
                tokens_per_s=warm.tokens_per_second,
                mfu=6 * tiny_params * warm.tokens_per_second / peak_of.get("float32", 0)
                if cuda
                else None,
                peak_gib=peak_gib(),
                steps=args.warmup_steps,
                batch=32,
                loss=warm.loss,
                phase="first call",
            )

        # -- 1. sampling on the built-in model ----------------------------------------------
        if "tiny" in parts:
            shipped_device = str(next(tiny_sampler.model.parameters()).device)
            meta["hfsampler_device_as_shipped"] = shipped_device
            base = dict(
                case=f"{tiny_prompts} addition prompts, greedy",
                batch=tiny_prompts,
                k=1,
                temperature=0.0,
                prompts=tiny_prompts,
                new_tokens=tiny_new,
            )
            measure(
                run,
                "sample tiny",
                f"ours (HFSampler) as shipped (on {shipped_device})",
                lambda: ours(tiny_sampler, prompts, tiny_prompts, 1, 0.0),
                rows=tiny_prompts,
                params=tiny_params,
                peak=0,
                extra=base,
            )
            on_device(tiny_sampler, device)
            sampling_block(
                run,
                "sample tiny",
                tiny_sampler,
                [dict(label=base["case"], prompts=prompts, batch=tiny_prompts, k=1, t=0.0)],
                params=tiny_params,
                peak=peak_of.get("float32", 0),
                new_tokens=tiny_new,
                rounds=args.rounds,
            )
            few = prompts[:: max(1, len(prompts) // single)][:single]
            measure(
                run,
                "sample tiny",
                "plain generate, one prompt at a time (dynamic cache)",
                lambda: plain(
                    tiny_sampler.model, raw_tokenizer(tiny_sampler), few, 1, 1, 0.0, tiny_new
                ),
                rows=len(few),
                params=tiny_params,
                peak=peak_of.get("float32", 0),
                extra={
                    **base,
                    "case": f"{len(few)} of those prompts, one at a time",
                    "batch": 1,
                    "prompts": len(few),
                },
            )
            tiny_sampler.model.to("cpu")
            if cuda:
                torch.cuda.empty_cache()

        # -- 3. training the built-in model ---------------------------------------------------
        if "train" in parts:
            examples = task.seed_examples(2048, task.sizes, 0.0, salt="speed-train")
            trainers = {
                "ours, batch 32, micro_batches 4 (default)": (32, 4),
                "ours, batch 32, micro_batches 1 (one padded batch)": (32, 1),
                "ours, batch 256, micro_batches 4": (256, 4),
            }
            for r in range(args.rounds):
                if run.left() < 60:
                    run.add(section="train tiny", contender="*", note="skipped: budget")
                    break
                for name, (batch, micro) in trainers.items():
                    reset_peak()
                    try:
                        result = HFTrainer(
                            batch_size=batch, lr=1e-3, warmup_ratio=0.05, micro_batches=micro
                        ).fit(model_dir, examples, train_steps, work / "trained", seed=0)
                    except Exception as err:  # noqa: BLE001
                        traceback.print_exc()
                        run.add(section="train tiny", contender=name, error=str(err)[:300])
                        continue
                    rate = result.tokens_per_second
                    run.add(
                        section="train tiny",
                        contender=name,
                        round=r + 1,
                        tokens=result.tokens,
                        seconds=round(result.seconds, 4),
                        tokens_per_s=rate,
                        mfu=6 * tiny_params * rate / peak_of["float32"] if cuda else None,
                        peak_gib=peak_gib(),
                        steps=train_steps,
                        batch=batch,
                        phase="warm",
                    )

        # -- 2. a model of SmolLM2-135M's config, random weights ------------------------------
        smol = [p.split("-")[1] for p in ("smol-float32", "smol-bfloat16") if p in parts]
        if smol or "smol-cpu" in parts:
            smol_dir = work / "smol"
            smol_params = save_smol(smol_dir, args.smol_layers)
            meta["smol_params"] = smol_params
            meta["smol_layers"] = args.smol_layers
            texts = smol_prompts(128, smol_len)
            cases = [
                dict(label="batch 16, greedy", prompts=texts[:32], batch=16, k=1, t=0.0),
                dict(label="batch 128, greedy", prompts=texts[:128], batch=128, k=1, t=0.0),
                dict(
                    label="batch 128, K=4 at T=0.8",
                    prompts=texts[:32],
                    batch=128,
                    k=4,
                    t=0.8,
                    skip=("plain generate, static cache, not compiled",),
                ),
            ]
            for dtype in smol:  # the project's default dtype, float32, first
                section = f"sample smol {dtype}"
                if run.left() < 60:
                    run.add(section=section, contender="*", note="skipped: budget")
                    continue
                sampler = on_device(
                    HFSampler(smol_dir, batch_size=16, max_new_tokens=smol_new, dtype=dtype), device
                )
                sampling_block(
                    run,
                    section,
                    sampler,
                    cases,
                    params=smol_params,
                    peak=peak_of.get(dtype, 0),
                    new_tokens=smol_new,
                    rounds=args.rounds,
                    need=45.0,
                )
                sampler.model.to("cpu")
                if cuda:
                    torch.cuda.empty_cache()

        # -- HFSampler as shipped (on the CPU) on the SmolLM2-sized model ----------------------
        if "smol-cpu" in parts:
            if run.left() > 25:
                cpu_sampler = HFSampler(smol_dir, batch_size=16, max_new_tokens=smol_new)
                where = str(next(cpu_sampler.model.parameters()).device)
                measure(
                    run,
                    "sample smol float32",
                    f"ours (HFSampler) as shipped (on {where})",
                    lambda: ours(cpu_sampler, texts[:smol_cpu_prompts], 16, 1, 0.0),
                    rows=smol_cpu_prompts,
                    params=smol_params,
                    peak=0,
                    extra=dict(
                        case=f"batch 16, greedy, {smol_cpu_prompts} prompts",
                        batch=16,
                        k=1,
                        temperature=0.0,
                        prompts=smol_cpu_prompts,
                        new_tokens=smol_new,
                    ),
                )
            else:
                run.add(
                    section="sample smol float32", contender="*", note="CPU run skipped: budget"
                )
    meta["finished"] = True
    run.save()
    print(report({"meta": meta, "records": run.records}))


# -- the tables ------------------------------------------------------------------------------------
def report(data: dict) -> str:
    meta, records = data["meta"], data["records"]
    lines = [
        f"Device: **{meta['device']}** ({meta.get('gpu_memory_gib', 0):.0f} GiB), "
        f"{meta['cpus']} CPUs; torch {meta['torch']} (CUDA {meta['cuda']}), transformers "
        f"{meta['transformers']}, Python {meta['python']}. {meta['date']}; "
        f"{meta['elapsed_s']:.0f} s in all.",
        "",
    ]
    for name, p in meta.get("peaks", {}).items():
        lines.append(
            f"- matmul peak, {name} ({p['n']}^3, random data, best of 10): "
            f"**{p['best'] / 1e12:.1f} TFLOP/s** (median {p['median'] / 1e12:.1f})"
        )
    lines.append("")
    sections: dict[str, list[dict]] = {}
    for r in records:
        sections.setdefault(r["section"], []).append(r)
    for section, rows in sections.items():
        lines += [f"### {section}", ""]
        notes = [r for r in rows if "note" in r]
        measured = [r for r in rows if "note" not in r]
        if section.startswith("train"):
            lines += [
                "| trainer | phase | tokens/s (best) | every round | MFU | peak GiB |",
                "|---|---|---|---|---|---|",
            ]
            lines += _rows(measured, by=("contender", "phase"))
        else:
            lines += [
                "| case | sampler | phase | tokens/s (best) | every round | tokens/row | "
                "ms/step | MFU | peak GiB | ours on CUDA / this |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            lines += _rows(measured, by=("case", "contender", "phase"), ratio=True)
        lines += [f"- {r['note']}" for r in notes]
        lines.append("")
    return "\n".join(lines)


def _rows(records: list[dict], by: tuple[str, ...], ratio: bool = False) -> list[str]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault(tuple(r.get(k) for k in by), []).append(r)
    ours_warm = {}
    for key, rs in groups.items():
        rates = [r["tokens_per_s"] for r in rs if "tokens_per_s" in r]
        if rates and "on CUDA" in str(key[1] if len(key) > 2 else "") and key[-1] == "warm":
            ours_warm[key[0]] = max(rates)
    lines = []
    for key, rs in groups.items():
        ok = [r for r in rs if "tokens_per_s" in r]
        if not ok:
            lines.append("| " + " | ".join(map(str, key)) + f" | failed: {rs[0].get('error')} |")
            continue
        top = max(ok, key=lambda r: r["tokens_per_s"])
        every = ", ".join(f"{r['tokens_per_s']:,.0f}" for r in ok)
        mfu = f"{100 * top['mfu']:.3f}%" if top.get("mfu") else "-"
        mem = f"{top['peak_gib']:.2f}" if top.get("peak_gib") else "-"
        cells = [*map(str, key), f"{top['tokens_per_s']:,.0f}", every]
        if ratio:
            cells += [f"{top['tokens_per_row']:.1f}", _ms_per_step(top)]
        cells += [mfu, mem]
        if ratio:
            mine = ours_warm.get(key[0])
            cells.append(f"{mine / top['tokens_per_s']:.2f}x" if mine else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _ms_per_step(r: dict) -> str:
    """Wall time per decoding step, prefill included, where every row ran (nearly) to
    max_new_tokens, so that the steps are known: batches x max_new_tokens."""
    new = r.get("new_tokens")
    if not new or r["tokens_per_row"] < 0.98 * new:
        return "-"
    batches = -(-r["prompts"] * r["k"] // r["batch"])
    return f"{1e3 * r['seconds'] / (batches * new):.1f}"


if __name__ == "__main__":
    main()
