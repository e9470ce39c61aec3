"""Sampling: the ``Sampler`` interface (base.py) and its backends, chosen by ``make_sampler``
(factory.py) from the run's ``sampling`` config.

    base.py     Generation, SamplingStats, Progress, Sampler, EngineSampler
    hf.py       HFSampler: a transformers model in this process, our decoding loop
    kv_cache.py its KV cache, written in place
    decode_attention.py  its attention for a decoding step on the CPU
    vllm.py     VLLMSampler: a vLLM engine, reloaded in place after training
    ray.py      RaySampler: prompts fanned out over the workers of a Ray cluster
    local.py    build_local_sampler: an hf or vllm sampler by name (the factory's, and
                each Ray worker's)
    factory.py  make_sampler, require_backend, BackendNotInstalled
    pool.py     SamplerPool: a run's samplers, its vLLM engine or Ray cluster kept across phases

vLLM and Ray are optional dependencies: vllm.py and ray.py import them only when a
sampler of theirs is built, so importing this package needs neither.
"""

from selftaught.samplers.base import EngineSampler, Generation, Progress, Sampler, SamplingStats
from selftaught.samplers.factory import BackendNotInstalled, make_sampler, require_backend
from selftaught.samplers.hf import HFSampler

__all__ = [
    "BackendNotInstalled",
    "EngineSampler",
    "Generation",
    "HFSampler",
    "Progress",
    "Sampler",
    "SamplingStats",
    "make_sampler",
    "require_backend",
]
