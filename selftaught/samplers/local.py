"""A sampler in this process, by backend name: what ``make_sampler`` builds for ``hf`` and
``vllm``, and what each Ray worker holds. A module of its own so that the factory and the
Ray workers share it without importing each other."""

from __future__ import annotations

from pathlib import Path

from selftaught.samplers.base import Sampler
from selftaught.samplers.hf import HFSampler
from selftaught.samplers.vllm import VLLMSampler

BACKENDS = ("hf", "vllm")


def build_local_sampler(backend: str, model_path: str | Path, kwargs: dict) -> Sampler:
    """An ``HFSampler`` or ``VLLMSampler`` on ``model_path``, built with ``kwargs``."""
    if backend == "hf":
        return HFSampler(model_path, **kwargs)
    if backend == "vllm":
        return VLLMSampler(model_path, **kwargs)
    raise ValueError(f"a local sampler is one of {BACKENDS}, not {backend!r}")
