"""Sampling throughput of the three backends on the built-in model, side by side in one run.

    python benchmarks/sampler_backends/run.py [--prompts 128] [--samples 4] \\
        [--temperature 0.8] [--new-tokens 200] [--rounds 2] [--backends hf,ray,vllm]

The same addition prompts go through ``HFSampler``, ``RaySampler`` (2 workers, each an
``HFSampler``, on a local cluster) and ``VLLMSampler``, each built with
``make_sampler`` as the loop builds them; the model is the built-in architecture
(d=128, 4 layers, 4 heads), randomly initialised, so generations run long and the
comparison is of decoding speed, not of answers. Each backend is started, timed for
``--rounds`` calls, and closed before the next starts (an idle engine must not share
the CPU with the one measured); the result is generated tokens per second, the best
round of each, and its ratio to HF. Writes ``results.md`` beside this file.

vLLM's CPU build pins its own transformers, so it usually lives in a virtualenv of its
own (``bash scripts/install.sh --vllm-venv DIR``): run this script with ``DIR/bin/python``
to measure all three; a Python without vLLM measures the others and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def measure(backend, model, prompts, args, threads: int | None = None) -> dict:
    import torch

    from selftaught.config import SamplingConfig
    from selftaught.samplers import make_sampler

    default_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)

    config = SamplingConfig(
        backend=backend,
        max_new_tokens=args.new_tokens,
        batch_size=args.batch,
        ray_workers=args.ray_workers,
    )
    load_before = uptime()
    start = time.perf_counter()
    sampler = make_sampler(config, model)
    startup = time.perf_counter() - start
    rounds = []
    try:
        for r in range(args.rounds):
            _, stats = sampler.generate(prompts, args.samples, args.temperature, seed=r)
            rounds.append((stats.tokens, stats.seconds))
            print(
                f"{backend} {threads}: {stats.tokens:,} tokens in {stats.seconds:.1f} s", flush=True
            )
    finally:
        torch.set_num_threads(default_threads)
        if hasattr(sampler, "close"):
            sampler.close()
    return {"startup": startup, "rounds": rounds, "load": [load_before, uptime()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256, help="HF batch; vLLM max_num_seqs")
    parser.add_argument("--ray-workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="hf,ray,vllm")
    parser.add_argument(
        "--hf-threads",
        default=None,
        help="torch threads for the hf backend, comma-separated, each measured; "
        "default: torch's own count and 1",
    )
    args = parser.parse_args()

    import torch
    import transformers

    hf_threads = [int(t) for t in (args.hf_threads or f"{torch.get_num_threads()},1").split(",")]

    from selftaught.models.tiny import save_new_tiny
    from selftaught.tasks import AdditionTask

    backends = args.backends.split(",")
    notes = []
    for name, package in (("vllm", "vllm"), ("ray", "ray")):
        if name in backends and importlib.util.find_spec(package) is None:
            backends.remove(name)
            notes.append(f"{name}: not measured, `{package}` is not installed for this Python")
    task = AdditionTask(1, 5, train_size=args.prompts)
    prompts = [task.prompt(p) for p in task.train_problems()]
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = save_new_tiny(Path(tmp) / "model", 128, 4, 4, seed=0)
        for backend in backends:
            if backend == "hf":
                for t in dict.fromkeys(hf_threads):
                    label = f"hf, {t} thread{'s' if t > 1 else ''}"
                    results[label] = measure("hf", model, prompts, args, t)
            else:
                results[backend] = measure(backend, model, prompts, args)

    versions = [f"torch {torch.__version__}", f"transformers {transformers.__version__}"]
    for package in ("ray", "vllm"):
        if importlib.util.find_spec(package):
            versions.append(f"{package} {__import__(package).__version__}")
    best = {b: max(t / s for t, s in r["rounds"]) for b, r in results.items()}
    hf_best = max((v for b, v in best.items() if b.startswith("hf")), default=None)
    rows = []
    for b, r in results.items():
        every = ", ".join(f"{t / s:,.0f}" for t, s in r["rounds"])
        ratio = f"{best[b] / hf_best:.2f}x" if hf_best else "-"
        tokens = sum(t for t, _ in r["rounds"]) // len(r["rounds"])
        rows.append(
            f"| {b} | {r['startup']:.1f} | {tokens:,} | {best[b]:,.0f} | {every} | {ratio} |"
        )
    loads = "\n".join(
        f"- {b}: before `{r['load'][0]}`; after `{r['load'][1]}`" for b, r in results.items()
    )
    command = (
        f"python benchmarks/sampler_backends/run.py --prompts {args.prompts} "
        f"--samples {args.samples} --temperature {args.temperature} "
        f"--new-tokens {args.new_tokens} --batch {args.batch} "
        f"--ray-workers {args.ray_workers} --rounds {args.rounds} --backends {args.backends} "
        f"--hf-threads {','.join(map(str, hf_threads))}"
    )
    text = (
        "# Sampling backends: hf vs ray vs vllm\n\n"
        f"Command: `{command}`\n\n"
        f"Date: {date}. Machine: {os.cpu_count()} CPU cores, no GPU; "
        f"{', '.join(versions)}; torch threads in the driver: {torch.get_num_threads()}.\n\n"
        f"Built-in model architecture (d=128, 4 layers, 4 heads), randomly initialised; "
        f"{args.prompts} addition prompts (1-5 digits) x {args.samples} samples at "
        f"temperature {args.temperature}, at most {args.new_tokens} new tokens each. "
        f"ray: {args.ray_workers} workers on a local cluster, each an HF sampler with one CPU "
        "(Ray sets one torch thread per worker); vllm: its CPU build, compiled (not eager). "
        "Startup: building the sampler (loading the model; starting the cluster and its "
        "workers; starting the vLLM engine). Tokens/s: generated tokens (end-of-sequence "
        "included) over the wall-clock of one `generate` call.\n\n"
        "| backend | startup s | tokens per round | best tokens/s | every round | vs best hf |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "Machine load (`uptime`) around each backend's measurement:\n\n" + loads + "\n"
    )
    if notes:
        text += "\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
