import pytest
import torch
from safetensors.torch import load_file

from selftaught.models import precision
from selftaught.models.precision import native_bf16, resolve_mixed_precision
from selftaught.models.training import HFTrainer
from selftaught.tasks.base import Example


@pytest.mark.parametrize(
    "setting, native, resolved",
    [("no", True, "no"), ("bf16", False, "bf16"), ("auto", True, "bf16"), ("auto", False, "no")],
)
def test_auto_takes_bf16_only_where_the_hardware_multiplies_it(setting, native, resolved):
    assert resolve_mixed_precision(setting, native) == resolved


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="'fp8'"):
        resolve_mixed_precision("fp8", True)


@pytest.mark.parametrize(
    "probes, native",
    [
        ({}, False),
        ({"_is_avx512_bf16_supported": True}, True),
        ({"_is_amx_tile_supported": True}, True),
    ],
)
def test_a_cpu_is_native_with_avx512_bf16_or_amx(monkeypatch, probes, native):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda p=probe: probes.get(p, False), raising=False)
    assert native_bf16(torch.device("cpu")) is native


def test_a_torch_without_the_cpu_probes_is_taken_as_not_native(monkeypatch):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, probe, raising=False)
    assert native_bf16(torch.device("cpu")) is False
    assert native_bf16(torch.device("meta")) is False


@pytest.mark.parametrize("native", [True, False])
def test_auto_trains_in_what_it_resolved_to_and_says_so(
    tiny_model, tmp_path, monkeypatch, product_dtypes, native
):
    monkeypatch.setattr("selftaught.models.training.native_bf16", lambda device: native)
    examples = [Example(f"Input:\n{i} + 1\nTarget:\n", f"{i + 1}") for i in range(1, 5)]
    result = HFTrainer(batch_size=4, mixed_precision="auto").fit(
        tiny_model, examples, 2, tmp_path / "out", seed=0
    )
    monkeypatch.undo()
    assert product_dtypes == {torch.bfloat16 if native else torch.float32}
    assert result.mixed_precision == ("bf16" if native else "no")
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert {w.dtype for w in weights.values()} == {torch.float32}


def test_the_module_names_every_setting_the_config_allows():
    from typing import get_args

    from selftaught.config.sections import TrainConfig

    allowed = get_args(TrainConfig.model_fields["mixed_precision"].annotation)
    assert set(allowed) == set(precision.MIXED_PRECISIONS)
