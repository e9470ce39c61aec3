"""What `torch.compile` would buy the built-in model on this CPU: sampling and training.

    python benchmarks/speed/compiled.py            # writes results-compiled.md
    python benchmarks/speed/compiled.py --train-way main  # results-compiled-main.md

`--train-way main` measures training only (sampling does not train), in the main
command's way on a CPU with bf16 (`train.mixed_precision: auto` resolved to bf16 autocast,
eager attention) rather than float32 with sdpa.

`HFSampler` does not compile, nor `HFTrainer` unless `train.torch_compile` is set; this
measures whether they should. Every way runs in this one process, on the shipped
built-in M, the compiled way by replacing the model's `forward` with
`torch.compile(forward, dynamic=True)` (shapes change every decoding step and every batch):

- sampling: 256 addition prompts (1-5 digits), one batch, greedy, 200 new tokens at most,
  with `HFSampler` as it is and compiled: the first call (the compile included), then
  `--rounds` warm calls of each, alternating; the greedy text of both checked equal;
- training: `HFTrainer` at the main command's settings (batch 32 in 4 micro-batches,
  lr 2e-4) for `--steps` steps on 2,048 worked sums, as it is, compiled, and with each
  decoder layer compiled as a module (one graph the layers share), alternating;
  seconds to the end of the first step (the compile included) and seconds a step over
  the second half (warm). A compiled fit follows another in the same process, as a run's
  iterations each train a fresh model: its first step is the recompile's cost. The
  compile's own cost, a run's first phase's, is each compiled way's first step in a
  process of its own with an empty inductor cache;
- whether the compiled forward is one graph: `torch._dynamo.explain` over a training
  forward and over a decoding step of `HFSampler`'s cache;
- where a training step's time goes: torch's profiler over 20 steps of `HFTrainer` as it
  is, its operators by their own CPU time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# a cold compile, as on a fresh machine: not one from inductor's cache of an earlier run
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="inductor-"))

import torch  # noqa: E402

from selftaught.models import training  # noqa: E402
from selftaught.models.base_model import shipped_path  # noqa: E402
from selftaught.samplers.hf import HFSampler  # noqa: E402
from selftaught.tasks import AdditionTask  # noqa: E402

HERE = Path(__file__).parent
# HFTrainer's settings beyond the main command's batch and rate, by --train-way
TRAIN_WAYS = {
    "float32": {},
    "main": {"mixed_precision": "bf16", "attn_implementation": "eager"},
}


def compile_forward(model):
    model.forward = torch.compile(model.forward, dynamic=True)
    return model


def graph_breaks(path: Path) -> str:
    """How dynamo splits a training forward and a decoding step (8 rows of 120 tokens)."""
    import torch._dynamo as dynamo

    from selftaught.models.loading import load_model
    from selftaught.samplers.kv_cache import growing_cache

    ids = torch.randint(3, 20, (8, 120))
    mask = torch.ones_like(ids)
    model = load_model(path).train()
    train = dynamo.explain(model)(input_ids=ids, attention_mask=mask, labels=ids, use_cache=False)
    sampler = HFSampler(path)
    cache = {sampler.cache_keyword: growing_cache(sampler.model.config)}
    with torch.inference_mode():
        sampler.model(input_ids=ids, attention_mask=mask, use_cache=True, **cache)
        step = dynamo.explain(sampler.model)(
            input_ids=ids[:, :1],
            attention_mask=torch.ones(8, 121, dtype=torch.long),
            position_ids=torch.full((8, 1), 120),
            use_cache=True,
            logits_to_keep=1,
            **cache,
        )
    return "; ".join(
        f"{what}: {e.graph_count} graph(s), {e.graph_break_count} graph break(s)"
        for what, e in (("a training forward", train), ("a decoding step", step))
    )


def sampling(path: Path, prompts: list[str], rounds: int) -> tuple[list[str], bool]:
    """Markdown rows, and whether both ways wrote the same greedy text."""
    samplers = {"as it is": HFSampler(path, batch_size=256, max_new_tokens=200)}
    samplers["compiled"] = HFSampler(path, batch_size=256, max_new_tokens=200)
    compile_forward(samplers["compiled"].model)
    first, warm, texts = {}, {name: [] for name in samplers}, {}
    for r in range(rounds + 1):
        for name, sampler in samplers.items():
            began = time.perf_counter()
            out, stats = sampler.generate(prompts, 1, 0.0, 0)
            seconds = time.perf_counter() - began
            texts[name] = [g[0].text for g in out]
            if r == 0:
                first[name] = seconds
            else:
                warm[name].append(stats.tokens / seconds)
            print(f"sampling round {r}: {name} {seconds:.1f} s", flush=True)
    rows = [
        f"| {name} | {first[name]:.1f} | {max(warm[name]):,.0f} | "
        + ", ".join(f"{rate:,.0f}" for rate in warm[name])
        + f" | {max(warm[name]) / max(warm['as it is']):.2f}x |"
        for name in samplers
    ]
    return rows, texts["compiled"] == texts["as it is"]


def compile_layers(model):
    """What `train.torch_compile` does: each decoder layer compiled as a module, one graph
    that all the layers share."""
    training.compile_layers(model)
    return model


# how a fit's model is compiled, by the name of its row
COMPILERS = {
    "as it is": None,
    "compiled": compile_forward,
    "layers compiled (train.torch_compile)": compile_layers,
}


def fit(path: Path, examples, steps: int, out: Path, how: str, way: dict) -> dict:
    stamps: list[float] = []
    load = training.load_trainable
    if COMPILERS[how]:
        training.load_trainable = lambda *a, **k: COMPILERS[how](load(*a, **k))
    try:
        began = time.perf_counter()
        result = training.HFTrainer(batch_size=32, lr=2e-4, **way).fit(
            path,
            examples,
            steps,
            out,
            seed=0,
            progress=lambda *_: stamps.append(time.perf_counter()),
        )
    finally:
        training.load_trainable = load
    half = len(stamps) // 2
    return {
        "first": stamps[0] - began,
        "warm": (stamps[-1] - stamps[half]) / (len(stamps) - 1 - half),
        "loss": result.loss,
    }


def train_profile(path: Path, examples, way: dict, top: int = 8) -> list[str]:
    """Markdown rows: the operators of 20 warm steps of ``HFTrainer`` by own CPU time."""
    from torch.profiler import ProfilerActivity, profile

    profiler = profile(activities=[ProfilerActivity.CPU])

    def window(step: int, _loss: float) -> None:
        if step == 5:
            profiler.start()
        elif step == 25:
            profiler.stop()

    with tempfile.TemporaryDirectory() as tmp:
        training.HFTrainer(batch_size=32, lr=2e-4, **way).fit(
            path, examples, 25, Path(tmp) / "out", seed=0, progress=window
        )
    events = profiler.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [
        f"| `{e.key[:60]}` | {100 * e.self_cpu_time_total / total:.1f}% | {e.count} |"
        for e in ranked
    ]


def cold_first_step(how: str, train_way: str) -> float:
    """Seconds to the end of the first step of ``how``'s fit in a process of its own with an
    empty inductor cache: what a run's first train phase pays. (In this process a way
    compiled after another reuses the kernels the other one generated.)"""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": tempfile.mkdtemp(prefix="inductor-")}
    done = subprocess.run(
        [sys.executable, __file__, "--train-way", train_way, "--cold", how],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.split()[-1])


def train_rows(path: Path, examples, steps: int, rounds: int, train_way: str) -> list[str]:
    way = TRAIN_WAYS[train_way]
    cold = {
        name: cold_first_step(name, train_way) if COMPILERS[name] else None for name in COMPILERS
    }
    print(f"cold first steps: {cold}", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in COMPILERS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name in runs:
                runs[name].append(fit(path, examples, steps, Path(tmp) / "out", name, way))
                print(f"training round {r}: {name} {runs[name][-1]}", flush=True)
    best = {name: min(run["warm"] for run in done) for name, done in runs.items()}
    return [
        f"| {name} | {'-' if cold[name] is None else f'{cold[name]:.1f}'} | "
        + ", ".join(f"{run['first']:.1f}" for run in done)
        + f" | {best[name]:.3f} | "
        + ", ".join(f"{run['warm']:.3f}" for run in done)
        + f" | {best['as it is'] / best[name]:.2f}x | "
        + ", ".join(f"{run['loss']:.7f}" for run in done)
        + " |"
        for name, done in runs.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--train-way", choices=TRAIN_WAYS, default="float32")
    parser.add_argument("--out", type=Path, help="default: results-compiled[-main].md here")
    parser.add_argument("--cold", choices=COMPILERS, help="print a first step's seconds, only")
    args = parser.parse_args()
    main_way = args.train_way == "main"
    out = args.out or HERE / f"results-compiled{'-main' if main_way else ''}.md"
    way = TRAIN_WAYS[args.train_way]
    path = shipped_path()
    load, stamp = os.getloadavg(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    began = time.perf_counter()
    task = AdditionTask(1, 5, train_size=256, seed=0)
    prompts = [task.prompt(p) for p in task.train_problems()]
    examples = task.seed_examples(2048, task.sizes, 0.0, salt="speed-train")
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            print(fit(path, examples, 4, Path(tmp), args.cold, way)["first"])
        return
    sections = []
    if not main_way:
        sample, same = sampling(path, prompts, args.rounds)
        sections += [
            f"`torch._dynamo.explain`: {graph_breaks(path)}.",
            "## Sampling (256 prompts, greedy, 200 new tokens at most)",
            "| sampler | first call s (compile included) | warm tokens/s (best) | every warm "
            "round | over as it is |\n|---|---|---|---|---|\n" + "\n".join(sample),
            f"Same greedy text both ways: {'yes' if same else 'NO'}.",
        ]
    train = train_rows(path, examples, args.steps, args.rounds, args.train_way)
    ops = train_profile(path, examples, way)
    settings = ", ".join(f"{k}={v}" for k, v in way.items()) or "float32, sdpa"
    sections += [
        f"## Training ({args.steps} steps, batch 32 in 4 micro-batches; {settings})",
        "| trainer | s to the first step's end, a process of its own | the same, each fit "
        "here | warm s/step (best) | every fit | speed over as it is | loss of the last 10% of "
        "steps, each fit |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(train),
        "Where 20 warm steps of the trainer as it is spend their time (torch's profiler, "
        "operators by own CPU time):\n\n| operator | share | calls |\n|---|---|---|\n"
        + "\n".join(ops),
    ]
    minutes = (time.perf_counter() - began) / 60
    command = " ".join(["python benchmarks/speed/compiled.py", *sys.argv[1:]])
    out.write_text(
        "# torch.compile on the built-in model (CPU)\n\n"
        f"Command: `{command}`, {stamp}, {minutes:.1f} min, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; load average before {load[0]:.2f}, "
        f"{load[1]:.2f}, {load[2]:.2f}.\n\n" + "\n\n".join(sections) + "\n"
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
