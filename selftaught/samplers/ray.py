"""Sampling fanned out over the workers of a Ray cluster, behind ``Sampler.generate``.

Each worker is a Ray actor holding one ``HFSampler`` or ``VLLMSampler`` (the model is
loaded once per worker, not per call). A call splits the prompts into contiguous shards,
``shards_per_worker`` per worker so that a fast worker takes more of them and progress
moves as shards finish; shard ``k`` is sampled with a seed derived from ``(seed, k)``, so
the same prompts, seed and worker count give the same samples whichever worker ran which
shard. Results come back in prompt order. Greedy results equal a single sampler's;
random ones differ from it (other seeds), reproducibly.

``address=None`` starts a local cluster (``ray.init(address="local", num_cpus=...)``),
which ``close`` shuts down again; a cluster it merely joined (an address, or a Ray this
process had already initialised) is left running, and only its own actors are killed.
On a remote cluster the workers import ``selftaught``, so it must be installed there, and
the model path must be readable on every node.

Ray is an optional dependency (the ``ray`` extra), imported only inside the methods that
use it, so this module imports without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path

from selftaught.memory import keep_freed_memory
from selftaught.samplers.base import Generation, Progress, SamplingStats
from selftaught.samplers.local import BACKENDS, build_local_sampler


class _Worker:
    """One Ray actor: a sampler that lives as long as the actor."""

    def __init__(self, backend: str, model_path: str, kwargs: dict):
        keep_freed_memory()  # a process of its own, as the CLI's (memory.py)
        self.backend, self.kwargs = backend, kwargs
        self.sampler = build_local_sampler(backend, model_path, kwargs)

    def ready(self) -> bool:
        return True

    def generate(self, prompts, num_samples, temperature, seed):
        return self.sampler.generate(prompts, num_samples, temperature, seed)

    def reload(self, model_path: str) -> None:
        if hasattr(self.sampler, "reload"):
            self.sampler.reload(model_path)
        else:
            self.sampler = build_local_sampler(self.backend, model_path, self.kwargs)

    def close(self) -> None:
        if hasattr(self.sampler, "close"):
            self.sampler.close()


class RaySampler:
    def __init__(
        self,
        model_path: str | Path,
        workers: int = 2,
        backend: str = "hf",
        address: str | None = None,
        *,
        sampler_kwargs: dict | None = None,
        cpus_per_worker: float = 1,
        gpus_per_worker: float | None = None,
        shards_per_worker: int = 4,
        local_cpus: int | None = None,
    ):
        """``sampler_kwargs`` go to each worker's sampler (batch_size, max_new_tokens, ...).
        ``gpus_per_worker`` None: one GPU per vLLM worker when the cluster has GPUs (times
        ``tensor_parallel_size``), none otherwise. ``local_cpus``: the CPUs a local cluster
        offers; by default enough for every worker, at least this machine's count."""
        import ray  # optional: the `ray` extra (make_sampler checks for it first)

        if backend not in BACKENDS:
            raise ValueError(f"ray_backend must be one of {BACKENDS}, got {backend!r}")
        if workers < 1 or shards_per_worker < 1:
            raise ValueError("workers and shards_per_worker must be >= 1")
        self.workers, self.backend = workers, backend
        self.shards_per_worker = shards_per_worker
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.started_cluster = False
        self.actors: list = []
        if not ray.is_initialized():
            if address is None:
                needed = int(workers * cpus_per_worker + 0.999)
                ray.init(
                    address="local",
                    num_cpus=local_cpus or max(needed, os.cpu_count() or 1),
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    # the workers pass prompts and texts, never tensors: keep /dev/shm free
                    object_store_memory=128 * 1024**2,
                )
                self.started_cluster = True
            else:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        if gpus_per_worker is None:
            has_gpus = ray.cluster_resources().get("GPU", 0) > 0
            tp = self.sampler_kwargs.get("tensor_parallel_size", 1)
            gpus_per_worker = tp if backend == "vllm" and has_gpus else 0
        total = ray.cluster_resources()
        for name, each in (("CPU", cpus_per_worker), ("GPU", gpus_per_worker)):
            # on this machine's cluster, actors that cannot fit would wait forever (a remote
            # cluster may autoscale, so it is not checked)
            if address is None and workers * each > total.get(name, 0):
                self.close()
                raise ValueError(
                    f"{workers} ray workers need {workers * each:g} {name}s, but the local "
                    f"cluster has {total.get(name, 0):g}"
                )
        actor = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker)(_Worker)
        self.actors = [
            actor.remote(backend, _where(model_path), self.sampler_kwargs) for _ in range(workers)
        ]
        try:  # wait until every model is loaded, so a bad path fails here, not mid-sampling
            ray.get([a.ready.remote() for a in self.actors])
        except Exception:
            self.close()
            raise

    def generate(
        self,
        prompts: list[str],
        num_samples: int,
        temperature: float,
        seed: int,
        progress: Progress | None = None,
    ) -> tuple[list[list[Generation]], SamplingStats]:
        import ray

        start = time.perf_counter()
        shards = split(len(prompts), self.workers * self.shards_per_worker)
        idle = list(self.actors)
        running: dict = {}  # ObjectRef -> (shard index, actor)
        results: dict[int, list[list[Generation]]] = {}
        stats = SamplingStats()
        pending = list(enumerate(shards))
        while pending or running:
            while pending and idle:
                k, (lo, hi) = pending.pop(0)
                actor = idle.pop(0)
                ref = actor.generate.remote(
                    prompts[lo:hi], num_samples, temperature, shard_seed(seed, k)
                )
                running[ref] = (k, actor)
            (done,), _ = ray.wait(list(running), num_returns=1)
            k, actor = running.pop(done)
            idle.append(actor)
            generations, shard_stats = ray.get(done)
            results[k] = generations
            stats.tokens += shard_stats.tokens
            if progress:
                progress(sum(len(g) for g in generations), tokens=shard_stats.tokens)
        stats.seconds = time.perf_counter() - start
        return [gens for k in range(len(shards)) for gens in results[k]], stats

    def reload(self, model_path: str | Path) -> None:
        """Every worker samples from ``model_path`` from now on (vLLM in place; HF anew)."""
        import ray

        ray.get([a.reload.remote(_where(model_path)) for a in self.actors])

    def close(self) -> None:
        """Kill this sampler's workers; shut the cluster down only if this sampler started it."""
        import ray

        if not ray.is_initialized():
            return
        with contextlib.suppress(Exception):  # a dead or stuck worker is killed below anyway
            ray.get([a.close.remote() for a in self.actors], timeout=60)
        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self.started_cluster:
            ray.shutdown()
            self.started_cluster = False

    def __enter__(self) -> RaySampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _where(model_path: str | Path) -> str:
    """A local checkpoint as an absolute path (workers need not share the driver's working
    directory); anything else, such as a hub name, as given."""
    path = Path(model_path)
    return str(path.resolve()) if path.exists() else str(model_path)


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``n`` items as at most ``parts`` contiguous, non-empty (lo, hi) ranges of near-equal size."""
    parts = max(1, min(parts, n))
    size, extra = divmod(n, parts)
    bounds, lo = [], 0
    for k in range(parts):
        hi = lo + size + (1 if k < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds if n else []


def shard_seed(seed: int, shard: int) -> int:
    """A shard's seed: a hash of (seed, shard), so neighbouring shards share no stream."""
    digest = hashlib.sha256(f"ray-shard:{seed}:{shard}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
