"""make_sampler builds the configured backend, and names the extra to install when its
package is missing."""

import importlib.util

import pytest


def test_factory_builds_the_configured_hf_sampler(tmp_path):
    from selftaught.config import SamplingConfig
    from selftaught.models.tiny import save_new_tiny
    from selftaught.samplers import HFSampler, make_sampler

    path = save_new_tiny(tmp_path / "m", 32, 2, 2, seed=0)
    config = SamplingConfig(max_new_tokens=7, batch_size=5, top_p=0.9)
    sampler = make_sampler(config, path, batch_size=3)
    assert isinstance(sampler, HFSampler)
    assert (sampler.batch_size, sampler.max_new_tokens, sampler.top_p) == (3, 7, 0.9)


def test_factory_names_the_extra_to_install_when_vllm_is_missing(tmp_path):
    from selftaught.config import SamplingConfig
    from selftaught.samplers import BackendNotInstalled, make_sampler

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this Python")
    with pytest.raises(BackendNotInstalled, match=r"pip install 'selftaught\[vllm\]'"):
        make_sampler(SamplingConfig(backend="vllm"), tmp_path)
    ray_vllm = SamplingConfig(backend="ray", ray_backend="vllm")
    with pytest.raises(BackendNotInstalled, match="vllm"):
        make_sampler(ray_vllm, tmp_path)
