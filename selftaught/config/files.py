"""Config files and ``--set`` overrides: reading YAML, applying ``KEY=VALUE`` overrides,
resolving a run's config, and explaining what is wrong with one. The schema itself is
``sections.py`` and ``tasks.py``.

Resolution order, lowest first: field defaults < the method preset < the YAML file
< command-line overrides. Unknown keys fail with the key's path and the closest
valid key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import difflib
import os
import reprlib
import stat
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from selftaught.config.base import ConfigError
from selftaught.config.sections import BaseTrainingConfig, RunConfig
from selftaught.config.tasks import TASK_CONFIGS
from selftaught.methods import preset_for

_SHAPE = BaseTrainingConfig.ARCHITECTURE  # the built-in model's keys, once under model


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], c), the value read as YAML so numbers and bools keep their
    type; a value that is not YAML (``@org/model``, ``"``) stays the text it is."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. train.steps=200")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError):
        value = raw  # validation then says what the key expects, if a string is wrong
    return key.strip().split("."), value


def set_dotted(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} is a value, not a section")
        node = child
    node[path[-1]] = value


def apply_overrides(
    raw: dict,
    overrides: Sequence[str],
    *,
    allowed: Sequence[str] | None = None,
    frozen: Sequence[str] = (),
    who: str = "this command",
) -> dict:
    """A copy of ``raw`` with each ``KEY=VALUE`` of ``overrides`` set, in order.

    ``allowed``: the only top-level keys that may be set (``who`` is said to change only
    those); ``frozen``: top-level keys that cannot change in a run that has started."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        if allowed is not None and keys[0] not in allowed:
            raise ConfigError(f"--set {text}: {who} changes only {_listed(allowed, ' and ')} keys")
        if keys[0] in frozen:
            raise ConfigError(
                f"--set {text}: {'.'.join(keys)} cannot change in a run that has started "
                f"(the finished phases used it); start a new run to change {_listed(frozen)}"
            )
        set_dotted(raw, keys, value)
    return raw


def _listed(keys: Sequence[str], last: str = ", ") -> str:
    """Top-level keys as a user writes them: ``train.*`` for a section."""
    valid = _valid_keys(RunConfig)
    shown = [k + ".*" if any(v.startswith(k + ".") for v in valid) else k for k in keys]
    return last.join([", ".join(shown[:-1]), shown[-1]]) if len(shown) > 1 else "".join(shown)


def deep_merge(low: dict, high: dict) -> dict:
    """A new dict: ``high`` wins, sections merge key by key."""
    out = dict(low)
    for key, value in high.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (no Python objects), where a key written twice in one
    mapping is an error: plain YAML lets the second silently win."""


def _unique_keys(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`, overridden at will
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r} is given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys)


MAX_CONFIG_BYTES = 1_000_000  # a config is a page of keys; more is the wrong file


def _check_file(path: Path) -> None:
    """Only a regular file of a config's size is read: a FIFO would wait forever for a
    writer, and /dev/zero or a data set given by mistake would fill memory first."""
    try:
        info = os.stat(path)
    except OSError:
        return  # reading it says what is wrong
    if stat.S_ISDIR(info.st_mode):
        return
    if not stat.S_ISREG(info.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "special file")
        raise ConfigError(f"{path}: a {kind}, not a regular file; expected a YAML config file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{path}: {info.st_size:,} bytes, too large for a config "
            f"(at most {MAX_CONFIG_BYTES:,}); expected a YAML config file"
        )


_FILE_KINDS = {
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def read_yaml(path: Path) -> dict:
    _check_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory; expected a YAML config file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path}: not a config: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def _valid_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        for sub in get_args(field.annotation) or (field.annotation,):  # a union: each member
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                keys.extend(_valid_keys(sub, prefix + name + "."))
    return list(dict.fromkeys(keys))


def _key(loc: tuple) -> str:
    """The dotted key a user wrote: pydantic puts the union tag in the path (task.addition.x)."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] == "task" and parts[1] in TASK_CONFIGS:
        del parts[1]
    return ".".join(parts)


_SHORT = reprlib.Repr()  # a value as the user wrote it, cut short (3.11 takes no kwargs)
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 2, 4, 4, 4
_SHORT.maxstring = _SHORT.maxother = 60


def _explain(err: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid config"]
    valid = _valid_keys(RunConfig)
    for item in err.errors():
        key, loc = _key(item["loc"]), item["loc"]
        named = (item.get("ctx") or {}).get("config_key")
        if named:  # an error of RunConfig's own that knows the key, the message says it all
            lines.append(f"  {named}: {item['msg']}")
        elif item["type"] == "extra_forbidden":
            pool, task = valid, None
            if len(loc) > 1 and loc[0] == "task" and loc[1] in TASK_CONFIGS:
                task = loc[1]  # suggest this task's keys, not another task's
                own = {f"task.{k}" for k in _valid_keys(TASK_CONFIGS[task])}
                pool = [k for k in valid if not k.startswith("task.") or k in own]
            close = difflib.get_close_matches(key, pool, n=1, cutoff=0.5)
            if not close:  # a misspelt leaf: compare with the keys of its own section
                leaf = key.rsplit(".", 1)[-1]
                section = key.rsplit(".", 1)[0] + "." if "." in key else ""
                siblings = [
                    k for k in pool if k.startswith(section) and "." not in k[len(section) :]
                ]
                names = difflib.get_close_matches(section + leaf, siblings, n=1, cutoff=0.4)
                close = names
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if key in valid and task:
                hint = f"; a key of another task, not of task.name {task!r}{hint}"
            if (leaf := key.removeprefix("model.")) != key and leaf in _SHAPE:
                hint = f"; the built-in model's architecture is base.{leaf} now"
            lines.append(f"  {key}: unknown key{hint}")
        else:
            got = _SHORT.repr(item.get("input"))  # bounded: YAML aliases can nest a lot
            lines.append(f"  {key}: {item['msg']} (got {got})")
    return "\n".join(lines)


def resolve(raw: dict, source: str = "config") -> RunConfig:
    """Apply the method's preset under ``raw`` and validate the whole run."""
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
    raw = apply_overrides(read_yaml(path), overrides)
    source = str(path) + (" with --set " + " ".join(overrides) if overrides else "")
    return resolve(raw, source)


def default_config_path() -> Path:
    return (Path(__file__).parents[1] / "configs" / "star-addition.yaml").resolve()


def dump_config(config: RunConfig) -> str:
    """The config as YAML; a real model's, without the built-in model's ``base`` (none)."""
    exclude = {"base"} if config.base is None else None
    return yaml.safe_dump(config.model_dump(mode="json", exclude=exclude), sort_keys=False)


def upgrade_stored(raw: dict) -> dict:
    """A run's stored config in today's layout. Runs stored before the built-in model's
    architecture moved from ``model`` to ``base`` have ``model.hidden_size/layers/heads``:
    moved into ``base`` for the built-in model, dropped for a real one, which never used them."""
    model = raw.get("model")
    if not isinstance(model, dict) or not any(k in model for k in _SHAPE):
        return raw
    raw = {**raw, "model": {k: v for k, v in model.items() if k not in _SHAPE}}
    if model.get("name_or_path", "builtin") == "builtin":
        base = raw.get("base") if isinstance(raw.get("base"), dict) else {}
        raw["base"] = {**{k: model[k] for k in _SHAPE if k in model}, **base}
    return raw
