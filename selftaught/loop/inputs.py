"""What a run was started on, recorded so that a resume can tell when it changed.

``inputs.json`` holds a fingerprint of the training problems, the held-out problems and
the base model M (its weights, or a hub name's revision), written before the first phase.
A resume computes them again and refuses if they differ once a phase has completed: those
phases used the old ones, and a run that trained on rows it had held out, or evaluated on
another held-out set, would report figures that mean nothing, with no sign of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from selftaught.config import DataTaskConfig, RunConfig
from selftaught.models.check import ADAPTER_CONFIG
from selftaught.models.hub import hub_revision
from selftaught.models.loading import weights_digest
from selftaught.progress import Reporter
from selftaught.store import RunDirError, RunStore, atomic_write_text, read_json
from selftaught.tasks import Problem, Task

INPUTS = "inputs.json"
VERSION = 1
MODEL_IDENTITY = ("weights", "hub", "revision", "adapter_of")  # the keys compared


class InputsChanged(RunDirError):
    """A resume found other data or another model than the run started with."""


def fingerprint(task: Task, config: RunConfig, base_path: Path | None = None) -> dict:
    """The run's inputs as ``inputs.json`` records them (without ``base_path``: the data
    alone, what ``refilter`` checks)."""
    source = _source(config)
    found = {
        "version": VERSION,
        "train": {**problems_digest(task.train_problems()), "source": source},
        "held_out": {**problems_digest(task.eval_problems()), "source": source},
    }
    if base_path is not None:
        found["model"] = model_fingerprint(config.model.name_or_path, base_path)
    return found


def problems_digest(problems: Iterable[Problem]) -> dict:
    """Count and SHA-256 of the problems' ids, questions and answers, in order."""
    digest, count = hashlib.sha256(), 0
    for p in problems:
        digest.update(json.dumps([p.id, p.question, p.answer]).encode() + b"\n")
        count += 1
    return {"problems": count, "sha256": digest.hexdigest()}


def _source(config: RunConfig) -> str:
    """Where the problems come from, for the message that says they changed."""
    t = config.task
    if isinstance(t, DataTaskConfig):
        held_out = t.eval_path or t.path
        return t.path if held_out == t.path else f"{t.path}, held out: {held_out}"
    return f"the {t.name} task's settings (task.*)"


def model_fingerprint(name_or_path: str, base_path: Path) -> dict:
    """M's weights (a digest of its safetensors files), or for a hub name not on disk here,
    the name and the revision it loads now (None when that cannot be told)."""
    path = Path(base_path)
    if name_or_path != "builtin" and not path.is_dir():
        return {"hub": name_or_path, "revision": hub_revision(name_or_path), "where": "the hub"}
    found = {"weights": weights_digest(path), "where": str(path)}
    adapter = path / ADAPTER_CONFIG
    if adapter.is_file():
        base = read_json(adapter).get("base_model_name_or_path", "")
        found["adapter_of"] = model_fingerprint(base, Path(base))
    return found


def check_inputs(store: RunStore, now: dict, reporter: Reporter | None = None) -> None:
    """Record ``now`` in ``inputs.json``, or on a resume compare it with what is there and
    refuse a change once a phase has completed (before that, nothing used the old ones).
    Without ``reporter`` only compare (``refilter``: a run it reads, not one it runs)."""
    path = store.root / INPUTS
    started = bool(store.state()["completed"])
    before = _recorded(path)
    if before is None:
        if started and reporter is not None:
            reporter.line(
                f"Note: {store.root} was started before runs recorded their inputs as they do "
                f"now, so a change of data or model since then cannot be told; recorded now "
                f"in {INPUTS}"
            )
        if reporter is not None:
            atomic_write_text(path, json.dumps(now, indent=1) + "\n")
        return
    changed = differences(before, now) if started else []
    if changed:
        raise InputsChanged(
            f"{store.root}: the run's inputs changed since it started: {'; '.join(changed)}. "
            "Its finished phases used the old ones, so it cannot go on with these. Restore "
            "what changed as it was and resume, or start a new run on the new inputs "
            f"(`selftaught run {store.root / 'config.yaml'} --out NEW_DIR`)"
        )
    if before != now and reporter is not None:  # nothing compared differs: a revision learnt
        atomic_write_text(path, json.dumps(now, indent=1) + "\n")


def _recorded(path: Path) -> dict | None:
    """``inputs.json`` as the run wrote it, or the error that says what to do about it;
    None where there is none to compare with: no file, or the first format (three short
    digests, no version)."""
    if not path.exists():
        return None
    try:
        before = read_json(path)
        if _first_format(before):
            return None
        shaped = before.get("version") == VERSION and all(
            isinstance(before[key], dict) for key in ("train", "held_out", "model")
        )
    except (RunDirError, AttributeError, KeyError):
        shaped = False
    if not shaped:
        raise RunDirError(
            f"{path}: damaged: not the record of the run's inputs it should be; restore it, or "
            "delete it to resume unchecked (the run then records its inputs anew)"
        )
    return before


def _first_format(found) -> bool:
    return (
        isinstance(found, dict)
        and found.keys() == {"train", "held_out", "model"}
        and all(isinstance(v, str) for v in found.values())
    )


def differences(before: dict, now: dict) -> list[str]:
    """What changed, as the message names it."""
    out = []
    for key, name in (("train", "train set"), ("held_out", "held-out set")):
        was, new = before.get(key) or {}, now[key]
        if was.get("sha256") != new["sha256"]:
            counts = f"{was.get('problems', '?')} problems then, {new['problems']} now"
            out.append(f"{name} ({counts}, from {new['source']})")
    was, new = before.get("model") or {}, now.get("model")
    if new is not None and not same_model(was, new):
        if "hub" in new and "hub" in was:
            revisions = f"revision {was.get('revision')} then, {new.get('revision')} now"
            out.append(f"model ({new['hub']} on the hub: {revisions})")
        else:
            out.append(f"model (the weights in {new['where']} are not those it started with)")
    return out


def same_model(was: dict, new: dict) -> bool:
    """Equal in every identity key both know: a revision that could not be told (offline,
    at the start or now) is no difference; a hub name now found on disk is one."""
    known = [k for k in MODEL_IDENTITY if was.get(k) is not None and new.get(k) is not None]
    if not known:
        return False
    if "adapter_of" in known and not same_model(was["adapter_of"], new["adapter_of"]):
        return False
    return all(was[k] == new[k] for k in known if k != "adapter_of")
