import re
from pathlib import Path

import pytest
import yaml

from selftaught.config import (
    METHODS,
    ConfigError,
    apply_overrides,
    deep_merge,
    default_config_path,
    dump_config,
    load_config,
    parse_override,
    resolve,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_default_config_is_the_shipped_star_addition():
    config = load_config(None)
    assert default_config_path().name == "star-addition.yaml"
    assert config.method == "star" and config.rationalization
    assert config.task.max_digits == 5


def test_overrides_keep_yaml_types():
    assert parse_override("train.steps=200") == (["train", "steps"], 200)
    assert parse_override("rationalization=false") == (["rationalization"], False)
    assert parse_override("sampling.temperature=0.7") == (["sampling", "temperature"], 0.7)
    config = load_config(None, ["train.steps=7", "seed=3"])
    assert config.train.steps == 7 and config.seed == 3


def test_unknown_key_names_its_path_and_the_closest_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "train:\n  stpes: 10\n"))
    assert "train.stpes: unknown key; did you mean 'train.steps'?" in str(err.value)
    assert "run.yaml" in str(err.value)
    with pytest.raises(ConfigError, match="iteratons: unknown key; did you mean 'iterations'"):
        resolve({"iteratons": 3})


def test_out_of_range_and_wrong_type_say_what_is_allowed():
    with pytest.raises(ConfigError, match=r"train.steps: .*greater than or equal to 1 \(got 0\)"):
        resolve({"train": {"steps": 0}})
    with pytest.raises(ConfigError, match=r"sampling.temperature: .*valid number.*'hot'"):
        resolve({"sampling": {"temperature": "hot"}})
    with pytest.raises(ConfigError, match="min_digits .* must be <= max_digits"):
        resolve({"task": {"min_digits": 4, "max_digits": 2}})


def test_unknown_method_lists_the_methods():
    with pytest.raises(ConfigError, match="unknown method 'stra'; expected one of star"):
        resolve({"method": "stra"})


def test_method_preset_sits_under_the_user_config():
    assert resolve({"method": "star-norat"}).rationalization is False
    assert resolve({"method": "star-norat", "rationalization": True}).rationalization is True


def test_bad_yaml_names_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"run.yaml:2: not valid YAML"):
        load_config(write(tmp_path, "seed: 1\nfoo: bar: baz\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.yaml"
    path.write_bytes("seed: 1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_malformed_override():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, ["train.steps"])
    with pytest.raises(ConfigError, match="'iterations' is a value, not a section"):
        load_config(None, ["iterations.x=1"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = load_config(None, ["train.steps=11"])
    path = write(tmp_path, dump_config(config))
    assert load_config(path) == config


def test_deep_merge_merges_sections():
    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}}) == {
        "a": {"x": 1, "y": 3},
        "b": 1,
    }


@pytest.mark.parametrize(
    "path", sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml")), ids=lambda p: p.name
)
def test_every_shipped_config_resolves(path):
    config = load_config(path)
    assert config.method in METHODS


def test_one_override_routine_with_each_callers_rules():
    raw = {"train": {"steps": 1}}
    assert apply_overrides(raw, ["train.steps=2", "seed=3"]) == {"train": {"steps": 2}, "seed": 3}
    assert raw == {"train": {"steps": 1}}  # a copy is changed
    only = "--set train.lr=1: refilter changes only selection.* and bstar.* keys"
    with pytest.raises(ConfigError, match=re.escape(only)):
        apply_overrides(raw, ["selection.dedupe=false", "train.lr=1"], **_REFILTER)
    frozen = (
        "--set base.layers=9: base.layers cannot change in a run that has started (the "
        "finished phases used it); start a new run to change method, task.*, base.*"
    )
    with pytest.raises(ConfigError, match=re.escape(frozen)):
        apply_overrides(raw, ["base.layers=9"], frozen=("method", "task", "base"))
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides(raw, ["selection"], **_REFILTER)


_REFILTER = {"allowed": ("selection", "bstar"), "who": "refilter"}


def test_the_builtin_models_architecture_is_in_base_and_a_real_model_has_no_base():
    builtin = load_config(None)
    assert (builtin.base.hidden_size, builtin.base.layers, builtin.base.heads) == (128, 4, 4)
    real = load_config(None, ["model.name_or_path=gpt2"])  # the file's base section dropped
    shown = yaml.safe_load(dump_config(real))
    assert (
        real.base is None
        and "base" not in shown
        and set(shown["model"])
        == {
            "name_or_path",
            "gguf_file",
            "dtype",
            "chat_template",
            "lora",
        }
    )
    assert resolve(shown) == real
    for key in ("base.hidden_size", "base.layers", "base.heads"):
        with pytest.raises(ConfigError) as err:
            load_config(None, ["model.name_or_path=gpt2", f"{key}=2"])
        assert f"\n  {key}: the built-in model's architecture" in str(err.value)
        assert "model.name_or_path is 'gpt2'" in str(err.value)
    with pytest.raises(ConfigError, match="model.layers: unknown key; .* is base.layers now"):
        load_config(None, ["model.layers=2"])
    assert resolve({"base": None}).base == resolve({}).base  # `base:` with nothing under it


def test_bstar_defaults_are_the_official_codes():
    b = resolve({"method": "bstar"}).bstar
    assert b.temperatures == [round(0.5 + 0.05 * i, 2) for i in range(15)]  # 0.50..1.20
    assert (b.threshold_min, b.threshold_max, b.threshold_step) == (-1.0, 0.99, 0.01)
    assert (b.n_star, b.search_target, b.train_target) == (8, 3550, 67500)
    assert b.reference and b.drop_unparseable
    assert (b.adjust, b.threshold_from, b.empty_queries) == ("both", "round", "skip")


def test_bstar_ablations_need_what_they_keep_fixed():
    with pytest.raises(ConfigError, match="selection.threshold: bstar.adjust: temperature keeps"):
        load_config(None, ["method=bstar", "bstar.adjust=temperature"])
    assert load_config(None, ["method=bstar-temperature"]).selection.threshold == 0.5
    with pytest.raises(ConfigError, match="threshold_from: search needs adjust: both"):
        load_config(None, ["method=bstar-threshold", "bstar.threshold_from=search"])


def test_a_gguf_file_is_the_model_and_has_no_base():
    config = load_config(None, ["model.gguf_file=my/model.gguf"])
    assert config.model.name_or_path == "my/model.gguf" and config.base is None
    assert resolve(yaml.safe_load(dump_config(config))) == config  # stored, read back
    with pytest.raises(ConfigError, match="two models"):
        load_config(None, ["model.gguf_file=my/model.gguf", "model.name_or_path=gpt2"])


def test_an_unquoted_no_is_mixed_precision_s_no():
    """YAML reads `no` as false, in a file and in --set alike."""
    raw = apply_overrides({}, ["train.mixed_precision=no"])
    assert raw["train"]["mixed_precision"] is False
    assert resolve(raw).train.mixed_precision == "no"
    assert resolve({"train": {"mixed_precision": "auto"}}).train.mixed_precision == "auto"
    with pytest.raises(ConfigError, match="train.mixed_precision: .*'no', 'bf16' or 'auto'"):
        resolve({"train": {"mixed_precision": True}})
