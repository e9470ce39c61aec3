"""The whole run as pydantic models; YAML files plus dotted ``--set`` overrides.

Resolution order, lowest first: field defaults < the method preset < the YAML file
< command-line overrides. Unknown keys fail with the key's path and the closest
valid key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """A user's config is wrong; the message says where and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TaskConfig(_Strict):
    name: Literal["addition"] = "addition"
    min_digits: int = Field(1, ge=1, le=30)
    max_digits: int = Field(5, ge=1, le=30)
    train_size: int = Field(
        2000, ge=1, description="training problems, spread evenly over digit counts"
    )
    eval_size: int = Field(100, ge=1, description="held-out problems per digit count")

    @model_validator(mode="after")
    def _digit_range(self) -> TaskConfig:
        if self.min_digits > self.max_digits:
            raise ValueError(
                f"min_digits ({self.min_digits}) must be <= max_digits ({self.max_digits})"
            )
        return self


class ModelConfig(_Strict):
    name_or_path: str = Field(
        "builtin", description="'builtin' trains the tiny model with `selftaught base`"
    )
    hidden_size: int = Field(128, ge=8, description="builtin model only")
    layers: int = Field(4, ge=1, description="builtin model only")
    heads: int = Field(4, ge=1, description="builtin model only")


class BaseTrainingConfig(_Strict):
    """How the built-in base model M is made: the analogue of STaR's few-shot prompt."""

    examples: int = Field(64000, ge=1, description="worked seed examples")
    min_digits: int = Field(1, ge=1)
    max_digits: int = Field(3, ge=1)
    long_fraction: float = Field(
        0.01,
        ge=0,
        le=1,
        description="share of seed examples longer than max_digits (up to task.max_digits): "
        "a few, so M is poor but not hopeless on long sums, as a few-shot prompt leaves a model",
    )
    hinted_fraction: float = Field(0.25, ge=0, le=1, description="share shown with the hint")
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)


class SamplingConfig(_Strict):
    temperature: float = Field(0.0, ge=0, le=5, description="0 is greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    num_samples: int = Field(1, ge=1, description="samples per problem (K)")
    max_new_tokens: int = Field(400, ge=1)
    batch_size: int = Field(256, ge=1)


class TrainConfig(_Strict):
    init: Literal["base", "previous"] = Field(
        "base", description="STaR and ReST-EM restart from M; Iterative RFT continues"
    )
    steps: int = Field(300, ge=1, description="steps of the first iteration")
    steps_increment: int = Field(20, ge=0, description="steps added each iteration")
    steps_growth: float = Field(0.0, ge=0, description="relative growth each iteration (0.2=+20%)")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)


class EvalConfig(_Strict):
    batch_size: int = Field(256, ge=1)


class RunConfig(_Strict):
    method: Literal["star", "star-norat"] = "star"
    iterations: int = Field(4, ge=1)
    seed: int = 0
    rationalization: bool = True
    task: TaskConfig = TaskConfig()
    model: ModelConfig = ModelConfig()
    base: BaseTrainingConfig = BaseTrainingConfig()
    sampling: SamplingConfig = SamplingConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    quiet: bool = False


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], c), the value read as YAML so numbers and bools keep their type."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.steps=200")
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key.strip().split("."), value


def set_dotted(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} is a value, not a section")
        node = child
    node[path[-1]] = value


def deep_merge(low: dict, high: dict) -> dict:
    """A new dict: ``high`` wins, sections merge key by key."""
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys.extend(_valid_keys(sub, prefix + name + "."))
    return keys


def _explain(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    valid = _valid_keys(RunConfig)
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
            if not close:  # a misspelt leaf: compare with the keys of its own section
                leaf = key.rsplit(".", 1)[-1]
                section = key.rsplit(".", 1)[0] + "." if "." in key else ""
                siblings = [
                    k for k in valid if k.startswith(section) and "." not in k[len(section) :]
                ]
                names = difflib.get_close_matches(section + leaf, siblings, n=1, cutoff=0.4)
                close = names
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"  {key}: unknown key{hint}")
        else:
            got = item.get("input")
            lines.append(f"  {key}: {item['msg']} (got {got!r})")
    return "\n".join(lines)


def resolve(raw: dict, source: str = "config") -> RunConfig:
    """Apply the method's preset under ``raw`` and validate the whole run."""
    from selftaught.methods import preset_for

    method = raw.get("method", RunConfig.model_fields["method"].default)
    try:
        preset = preset_for(method)
    except KeyError as err:
        raise ConfigError(f"{source}: method: {err.args[0]}") from None
    try:
        return RunConfig.model_validate(deep_merge(preset, raw))
    except ValidationError as err:
        raise ConfigError(_explain(err, source)) from None


def load_config(path: Path | None, overrides: list[str] = ()) -> RunConfig:
    """A file (or the built-in default) plus ``KEY=VALUE`` overrides, resolved and validated."""
    path = path or default_config_path()
    raw = read_yaml(path)
    for text in overrides:
        keys, value = parse_override(text)
        set_dotted(raw, keys, value)
    source = str(path) + (" with --set " + " ".join(overrides) if overrides else "")
    return resolve(raw, source)


def default_config_path() -> Path:
    return (Path(__file__).parent / "configs" / "star-addition.yaml").resolve()


def dump_config(config: RunConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
