"""Bad input, generated in bulk: each case must end in a clear error that names the key,
file or line (a ``ConfigError`` from the library; ``error:`` and exit code 2 from the CLI,
never a traceback), or, for a model's output, in a counted "unparseable" outcome; never
in a crash. The cases are generated from the config models themselves (every key of
every section: an unknown sibling, a misspelling, each wrong type, each bound crossed),
from mutations of a valid YAML file and random bytes, and from mangled model outputs.
Test ids name each case; the last test prints how many of each kind were tried.

Every bad input given to the command line goes through ``through_cli``, which also checks
that no file it watches was lost or changed; the last test prints how many went through,
and how many ended in a traceback (none may).
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import re
import shutil
import types
import typing
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from typer.testing import CliRunner

from selftaught.cli import app
from selftaught.config import (
    TASK_CONFIGS,
    ConfigError,
    RunConfig,
    dump_config,
    load_config,
    resolve,
    set_dotted,
)
from selftaught.loop.inputs import fingerprint
from selftaught.store import RunStore, write_jsonl
from selftaught.tasks import build_task
from selftaught.tasks.addition import AdditionTask
from selftaught.tasks.addition import scratchpad as addition_scratchpad
from selftaught.tasks.expression import ExpressionTask
from selftaught.tasks.expression import solution as expression_solution
from tests.test_user_errors import BAD_MODELS, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()
TRIED: Counter = Counter()  # cases run, by kind, for the tally at the end
CLI: Counter = Counter()  # bad inputs through the command line: tried, tracebacks, files hurt


def through_cli(args: list, *phrases: str, watch=(), may_pass: bool = False):
    """``selftaught ARGS`` with a bad input: exit code 2 and ``error:`` with ``phrases``
    (or, ``may_pass``, exit 0: a value that is valid after all), never a traceback, and
    every file under ``watch`` as it was, none added unless the command passed."""
    before = snapshot(*map(Path, watch))
    result = runner.invoke(app, [str(a) for a in args])
    after = snapshot(*map(Path, watch))
    CLI["tried"] += 1
    traceback = not isinstance(result.exception, SystemExit | None) or "Traceback" in result.output
    CLI["tracebacks"] += traceback
    hurt = [path for path in before if after.get(path) != before[path]]
    passed = may_pass and result.exit_code == 0
    hurt += [] if passed else [path for path in after if path not in before]
    CLI["files lost or changed"] += len(hurt)
    CLI["accepted (valid after all)"] += passed
    assert not traceback, (args, result.output, result.exception)
    assert not hurt, (args, hurt, result.output)
    if not passed:
        assert_user_error(result, *phrases)
    return result


# -- the config's keys, from its models ------------------------------------------------------
VARIANTS = {  # a valid starting point per task kind; every case changes one thing in it
    "addition": {},
    "expression": {"task": {"name": "expression"}},
    "code": {
        "task": {"name": "code", "path": str(FIXTURES / "code_problems.jsonl"), "eval_size": 1},
        "base": {"max_size": 1},
    },
}


def _members(annotation) -> list:
    """A union's members but None, each without its Annotated wrapper (config's Count)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        members = [annotation]
    return [
        typing.get_args(m)[0] if typing.get_origin(m) is typing.Annotated else m for m in members
    ]


def _submodel(annotation) -> type[BaseModel] | None:
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def leaves(variant: str) -> list[tuple[str, object, list]]:
    """(dotted key, annotation, constraints) of every value in the config; sections are
    walked, ``task`` as the variant's own model."""
    out = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = prefix + name
            if key == "task":
                walk(TASK_CONFIGS[variant], "task.")
            elif (sub := _submodel(field.annotation)) is not None:
                walk(sub, key + ".")
            else:
                out.append((key, field.annotation, list(field.metadata)))

    walk(RunConfig, "")
    return out


def sections(variant: str) -> list[str]:
    keys = {k.rsplit(".", 1)[0] + "." for k, _, _ in leaves(variant) if "." in k}
    return ["", *sorted(keys)]


def base_raw(variant: str, key: str = "") -> dict:
    raw = copy.deepcopy(VARIANTS[variant])
    if key.startswith("model.lora."):
        set_dotted(raw, ["model", "lora"], {})  # an optional section: present, all defaults
    return raw


def with_value(variant: str, key: str, value) -> dict:
    raw = base_raw(variant, key)
    set_dotted(raw, key.split("."), value)
    return raw


def misspell(name: str) -> str:
    """Two different letters near the middle swapped, a common typo; short names get an x."""
    for i in sorted(range(1, len(name)), key=lambda i: abs(i - len(name) // 2)):
        if len(name) >= 4 and name[i] != name[i - 1]:
            return name[: i - 1] + name[i] + name[i - 1] + name[i + 1 :]
    return name + "x"


UNIVERSE = ["many", 5, 2, 1.5, [1], ["x"], {"a": 1}, "zz-not-a-choice", [["x", "y"]]]


def wrong_types(annotation) -> list:
    """Values of the wrong type for a field, as its own type (no bounds) judges them."""
    adapter = TypeAdapter(annotation)
    wrong = []
    for value in UNIVERSE:
        try:
            adapter.validate_python(value)
        except ValidationError:
            wrong.append(value)
    return wrong


def out_of_range(annotation, constraints: list) -> list[tuple[object, str]]:
    """(value, phrase of the message) just past each bound of a field."""
    kind = int if int in _members(annotation) else float
    step = 1 if kind is int else 0.5
    cases = []
    for c in constraints:
        name = type(c).__name__
        if name == "Ge":
            cases.append((c.ge - step, "greater than or equal to"))
        elif name == "Gt":
            cases += [(c.gt, "greater than"), (c.gt - step, "greater than")]
        elif name == "Le":
            cases.append((c.le + step, "less than or equal to"))
        elif name == "Lt":
            cases += [(c.lt, "less than"), (c.lt + step, "less than")]
        elif name == "MinLen":
            cases.append(([], "at least"))
    return cases


def config_cases() -> list[tuple]:
    """(id, raw config, key the message must name, phrase it must hold, found by
    this suite: the cases that were bugs until it found them): for
    the addition task every key of the run; for the other task kinds their task keys."""
    cases = []
    for variant in VARIANTS:
        own = [
            leaf for leaf in leaves(variant) if variant == "addition" or leaf[0].startswith("task.")
        ]
        for section in sections(variant):
            if variant != "addition" and section != "task.":
                continue
            key = f"{section}zz_unknown"
            cases.append(
                (f"unknown {variant} {key}", with_value(variant, key, 1), key, "unknown key", False)
            )
        for key, annotation, constraints in own:
            if key == "task.name":
                continue  # the union's tag: its own cases below
            section, _, leaf = key.rpartition(".")
            typo = f"{section}.{misspell(leaf)}" if section else misspell(leaf)
            raw = base_raw(variant, key)
            set_dotted(raw, typo.split("."), 1)
            cases.append((f"typo {variant} {typo}", raw, typo, "unknown key", False))
            for value in wrong_types(annotation):
                unhashable = key == "method" and isinstance(value, list | dict)
                phrase = "Input should be" if key != "method" else "unknown method"
                raw = with_value(variant, key, value)
                cases.append((f"type {variant} {key}={value!r}", raw, key, phrase, unhashable))
            for value, phrase in out_of_range(annotation, constraints):
                raw = with_value(variant, key, value)
                cases.append((f"range {variant} {key}={value}", raw, key, phrase, False))
            if float in _members(annotation):
                for value in (float("inf"), float("-inf"), float("nan")):
                    raw = with_value(variant, key, value)
                    cases.append((f"nonfinite {variant} {key}={value}", raw, key, "finite", True))
            if key.endswith("seed"):
                for value in (2**64, -1):
                    raw = with_value(variant, key, value)
                    cases.append((f"seed {variant} {key}={value}", raw, key, "than", True))
    cases += [  # across fields, and the union's tag
        ("tag task.name=zz", {"task": {"name": "zz"}}, "task", "does not match", False),
        ("tag task.name=5", {"task": {"name": 5}}, "task", "does not match", False),
        ("tag task=list", {"task": [1]}, "task", "valid dictionary", False),
        ("cross digits", {"task": {"min_digits": 4, "max_digits": 2}}, "task", "min_digits", False),
        (
            "cross terms",
            {"task": {"name": "expression", "min_terms": 5, "max_terms": 3}},
            "task",
            "min_terms",
            False,
        ),
        ("cross base.max_size", {"base": {"max_size": 9}}, "", "base.max_size", False),
        (
            "cross thresholds",
            {"bstar": {"threshold_min": 1, "threshold_max": 0}},
            "bstar",
            "threshold_min",
            False,
        ),
        ("cross temperature grid", {"bstar": {"temperatures": [0.5, 9]}}, "bstar", "(0, 5]", False),
        (
            "cross continuous",
            {"train": {"continuous": True, "init": "base"}},
            "train",
            "needs init: previous",
            False,
        ),
        ("cross pass_k", {"eval": {"num_samples": 4, "pass_k": [8]}}, "eval", "k=8", False),
        (
            "cross pass_k_s",
            {"eval": {"num_samples": 4, "pass_k_s": [[4, 5]]}},
            "eval",
            "s <= k",
            False,
        ),
        ("method unknown", {"method": "stra"}, "method", "unknown method", False),
        (
            "key of another task",
            {"task": {"name": "expression", "min_digits": 1}},
            "task.min_digits",
            "not of task.name 'expression'",  # was: "did you mean 'task.min_digits'?"
            True,
        ),
        ("key not a string", {1: 2}, "1", "Keys should be strings", False),
        ("section null", {"train": None}, "train", "valid dictionary", False),
        ("section scalar", {"sampling": 3}, "sampling", "valid dictionary", False),
    ]
    return cases


CONFIG_CASES = config_cases()


def check_config_case(raw: dict, key: str, phrase: str, path: Path | None = None) -> str | None:
    """None when the case fails as it must; else what went wrong."""
    try:
        if path is None:
            resolve(raw, "fuzz")
        else:
            path.write_text(yaml.safe_dump(raw, allow_unicode=True))
            load_config(path)
    except ConfigError as err:
        message = str(err)
        if phrase not in message or (
            key and f"  {key}" not in message and f"{key}:" not in message
        ):
            return f"message does not name {key!r} with {phrase!r}: {message}"
        if path is not None and not message.startswith(str(path)):
            return f"message does not name the file: {message}"
        return None
    except Exception as err:  # noqa: BLE001 - that is the finding
        return f"{type(err).__name__}: {err}"
    return "accepted"


def test_bad_config_values_name_the_key():
    """Every generated case (unknown keys at every level, typos of every key, each wrong type
    and each bound crossed) is a ConfigError naming the key."""
    cases = [c for c in CONFIG_CASES if not c[4]]
    failures = [(c[0], why) for c in cases if (why := check_config_case(*c[1:4]))]
    TRIED["config: unknown keys, typos, wrong types, bounds"] += len(cases)
    assert not failures, f"{len(failures)}/{len(cases)} cases: {failures[:10]}"
    assert len(cases) > 300


def test_bad_config_values_found_by_this_suite_name_the_key():
    """Non-finite floats, seeds torch cannot take, a method that is a list or mapping."""
    cases = [c for c in CONFIG_CASES if c[4]]
    TRIED["config: non-finite floats, seeds, unhashable method"] += len(cases)
    failures = [(c[0], why) for c in cases if (why := check_config_case(*c[1:4]))]
    assert not failures, f"{len(failures)}/{len(cases)} cases: {failures[:10]}"


def test_bad_config_files_on_the_command_line(tmp_path):
    """A spread of the cases (every 10th) as a file, through the library and `selftaught
    run`: exit code 2, `error:` naming the file and key, no traceback, no run started."""
    cases = [c for c in CONFIG_CASES[::10] if not c[4]]
    path = tmp_path / "bad.yaml"
    for case_id, raw, key, phrase, _ in cases:
        assert check_config_case(raw, key, phrase, path) is None, case_id
        out = tmp_path / "run"
        through_cli(["run", path, "--out", out], str(path), phrase, watch=[path, out])
        assert not out.exists()
    TRIED["config: files through `selftaught run`"] += len(cases)
    assert len(cases) > 30


def assert_user_error(result, *phrases: str) -> None:
    output = result.output
    assert result.exit_code == 2, output + repr(result.exception)
    assert "error:" in output and "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, (phrase, output)


def test_misspelt_keys_are_answered_with_the_right_key():
    """For a typo of a real key (two letters swapped), the hint names that key."""
    right = total = 0
    for variant in VARIANTS:
        for key, _, _ in leaves(variant):
            section, _, leaf = key.rpartition(".")
            if len(leaf) < 5 or key == "task.name":
                continue
            typo = f"{section}.{misspell(leaf)}" if section else misspell(leaf)
            raw = base_raw(variant, key)
            set_dotted(raw, typo.split("."), 1)
            with pytest.raises(ConfigError) as err:
                resolve(raw)
            total += 1
            right += f"did you mean {key!r}" in str(err.value)
    TRIED["config: misspelling hints"] += total
    assert right / total >= 0.9, f"{right}/{total} hints named the intended key"


# -- files: missing, not UTF-8, not YAML, not a mapping, empty -------------------------------
def text_cases() -> list[tuple[str, str, str]]:
    """(id, text, pattern the message must match): four kinds of syntax error on each line
    of a valid file, and YAML documents that are not a mapping."""
    valid = dump_config(resolve({}))
    lines = valid.splitlines(keepends=True)
    cases = []
    for i, line in enumerate(lines):  # one syntax error per line of a valid file
        if ":" not in line:
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        key = line.strip().split(":")[0]
        broken = {
            "unclosed list": f"{indent}{key}: [1, 2\n",
            "unclosed quote": f'{indent}{key}: "abc\n',
            "tab indent": f"\t{line.lstrip()}",
            "stray colon": f"{indent}{key}: a: b: c\n",
        }
        for kind, bad in broken.items():
            text = "".join([*lines[:i], bad, *lines[i + 1 :]])
            cases.append((f"{kind}, line {i + 1}", text, r":\d+: not valid YAML"))
    for name, text in {"list": "- 1\n- 2\n", "scalar": "42\n", "string": "just words\n"}.items():
        cases.append((f"a {name}", text, "expected a mapping"))
    for name, text in {"bool": "true\n", "float": "1.5\n"}.items():
        cases.append((f"a {name}", text, "expected a mapping"))
    return cases


def test_broken_yaml_names_file_and_line(tmp_path):
    cases = text_cases()
    path = tmp_path / "broken.yaml"
    failures = []
    for case_id, text, pattern in cases:
        path.write_text(text)
        try:
            load_config(path)
            failures.append((case_id, "accepted"))
        except ConfigError as err:
            if not re.search(pattern, str(err)) or not str(err).startswith(str(path)):
                failures.append((case_id, str(err)))
    TRIED["config: broken YAML files"] += len(cases)
    assert not failures, failures[:10]
    assert len(cases) > 300


ENCODINGS = {
    "latin-1": "seed: 1  # café\n".encode("latin-1"),
    "utf-16": "seed: 1\n".encode("utf-16"),
    "utf-32": "seed: 1\n".encode("utf-32"),
    "cp1252-quotes": "log:\n  wandb_project: \x93x\x94\n".encode("latin-1"),
    "truncated-utf8": "seed: 1 # é".encode()[:-1],
}


@pytest.mark.parametrize("data", list(ENCODINGS.values()), ids=list(ENCODINGS))
def test_not_utf8_is_named(tmp_path, data):
    TRIED["config: wrong encodings"] += 1
    path = tmp_path / "enc.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        load_config(path)
    assert str(path) in str(err.value)
    through_cli(["config", path], str(path), "not UTF-8", watch=[path])


def test_empty_file_means_the_defaults_and_missing_file_is_named(tmp_path):
    TRIED["config: empty and missing files"] += 3
    for text in ("", "\n\n", "# only a comment\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        assert load_config(path) == resolve({})
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(missing)
    through_cli(["run", missing], str(missing), "no such", watch=[missing])


SPECIAL_FILES = {
    "directory": None,  # the path is a directory
    "deep-nesting": "iterations: " + "[" * 3000 + "]" * 3000 + "\n",
    "deep-mapping": "".join("  " * i + f"k{i}:\n" for i in range(2000)),
    "huge-integer": "seed: " + "9" * 5000 + "\n",
    "duplicate-key": "seed: 1\ntrain:\n  steps: 3\nseed: 2\n",
    "python-tag": "seed: !!python/object/apply:os.system ['touch /tmp/selftaught-pwned']\n",
    "recursive-alias": "iterations: &x [*x]\n",
    "alias-bomb": "log:\n  wandb_project: &a [1,1,1,1,1,1,1,1,1,1]\n"
    + "".join(
        f"  {k}: &{n} [" + ",".join([f"*{p}"] * 10) + "]\n"
        for k, n, p in (("wandb_mode", "b", "a"), ("tensorboard", "c", "b"), ("wandb", "d", "c"))
    )
    + "iterations: &e ["
    + ",".join(["*d"] * 10)
    + "]\n",
    "method-mapping": "method: {star: 1}\n",
    "nul-byte": "seed: 1\x00\n",
}


@pytest.mark.parametrize("name", SPECIAL_FILES)
def test_hostile_config_files_fail_cleanly(tmp_path, name):
    TRIED["config: hostile files"] += 1
    path = tmp_path if SPECIAL_FILES[name] is None else tmp_path / f"{name}.yaml"
    if SPECIAL_FILES[name] is not None:
        path.write_text(SPECIAL_FILES[name])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(str(path)) and len(str(err.value)) < 2000
    assert not Path("/tmp/selftaught-pwned").exists()
    through_cli(["config", path], str(path), watch=[path])


def mutations(text: str, count: int, seed: int) -> list[str]:
    """Random edits of a valid YAML file: characters YAML cares about inserted, deleted or
    swapped, lines duplicated or dropped, indentation changed."""
    rng = random.Random(seed)
    specials = list(":-[]{}'\"#&*!|>%@`,?\t \n") + ["0", "x", "null", "1e9", "é", "\u2028"]
    out = []
    for _ in range(count):
        s = text
        for _ in range(rng.randint(1, 4)):
            op, i = rng.randrange(6), rng.randrange(len(s))
            if op == 0:
                s = s[:i] + rng.choice(specials) + s[i:]
            elif op == 1:
                s = s[:i] + s[i + 1 :]
            elif op == 2:
                j = rng.randrange(len(s))
                s = s[:i] + s[j : j + 20] + s[i:]
            else:
                lines = s.splitlines(keepends=True)
                k = rng.randrange(len(lines))
                if op == 3:
                    lines.insert(k, lines[k])
                elif op == 4:
                    del lines[k]
                else:
                    lines[k] = " " * rng.randrange(1, 4) + lines[k]
                s = "".join(lines)
        out.append(s)
    return out


def test_mutated_and_random_files_load_or_fail_with_a_config_error(tmp_path, capsys):
    """Hundreds of random files: each is a valid config or a ConfigError naming the file."""
    valid = dump_config(resolve({}))
    rng = random.Random(1)
    texts = mutations(valid, 300, seed=2)
    blobs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))) for _ in range(60)]
    outcomes: Counter = Counter()
    path = tmp_path / "fuzz.yaml"
    for i, data in enumerate([t.encode() for t in texts] + blobs):
        path.write_bytes(data)
        try:
            load_config(path)
            outcomes["valid"] += 1
        except ConfigError as err:
            assert str(err).startswith(str(path)), err
            outcomes["ConfigError"] += 1
        if i % 25 == 0:  # and the CLI: exit 0 or 2, never a traceback
            through_cli(["config", path], str(path), watch=[path], may_pass=True)
            outcomes["CLI"] += 1
    TRIED["config: mutated YAML files"] += len(texts)
    TRIED["config: random bytes"] += len(blobs)
    assert outcomes["valid"] + outcomes["ConfigError"] == 360
    assert outcomes["ConfigError"] > 180  # most edits break something


OVERRIDE_VALUES = [
    "[1", "{", '"', "@org/model", "!!python/object/apply:os.system ['true']", "9" * 5000,
    "", "null", "~", "-1", ".inf", ".nan", "[[[[", "&a [*a]", "a: b", "- x", "%", "`", "1e400",
]  # fmt: skip


def test_odd_override_values_are_errors_or_values():
    """--set KEY=VALUE with values that are not YAML: the value is the text, and the key's
    own validation decides; never a YAML parser's traceback."""
    keys = ["seed", "train.steps", "train.lr", "sampling.temperature", "method", "log.wandb_mode"]
    tried = 0
    for key in keys:
        for value in OVERRIDE_VALUES:
            tried += 1
            try:
                load_config(None, [f"{key}={value}"])
            except ConfigError as err:
                assert key in str(err) or "method" in str(err), (key, value, str(err))
    TRIED["config: --set values"] += tried
    assert tried == len(keys) * len(OVERRIDE_VALUES)


# -- model outputs -----------------------------------------------------------------------------
def output_cases(rng: random.Random) -> dict[str, list[str]]:
    """Completions by kind; each kind says whether an answer may be found in it."""
    solution_add = addition_scratchpad(624, 259) + "8 8 3"
    solution_expr = expression_solution("3 + 5 * 2 + 7")
    ascii_text = "".join(chr(c) for c in range(32, 127)) + "\n"

    def random_text(alphabet: str, n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    unicode_alphabet = "٣²①०\u2028\u00a0\ufeff\u200b漢🙂é\x00\x1b\r\t\n\\<>/" + "0123456789 "
    return {
        "no answer": [
            "",
            " ",
            "\n",
            "I don't know.",
            "<scratch>",
            "<scratch>\n</scratch>",
            "</scratch>",
            "Input:\n1 + 2\nTarget:\n",
            "The answer is 7.",
        ],  # fmt: skip
        "garbage": [random_text(ascii_text, rng.randrange(1, 400)) for _ in range(150)],
        "random unicode": [
            random_text(unicode_alphabet, rng.randrange(1, 200)) for _ in range(150)
        ],
        "random bytes": [
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).decode("latin-1")
            for _ in range(100)
        ],
        "unterminated scratchpad": [
            "<scratch>\n" + "6 2 4 + 2 5 9 , C: 0\n" * k for k in range(1, 30)
        ],
        "cut at max length (addition)": [solution_add[:i] for i in range(len(solution_add))],
        "cut at max length (expression)": [solution_expr[:i] for i in range(len(solution_expr))],
        "huge lines": [
            "x" * 1_000_000,
            "<scratch>\n" + "1 + 1 , " * 100_000 + "\n</scratch>\n2",
            "</scratch>\n" + "9 " * 200_000,
            "</scratch>\n" + "9" * 500_000,
            "\n" * 200_000,
        ],
        "odd answers": [
            "</scratch>\n٣",
            "</scratch>\n²",
            "</scratch>\n8  8 3",
            "</scratch>\n 8 8 3",
            "</scratch>\n8\u00a08 3",
            "</scratch>\n-1",
            "</scratch>\n1.5",
            "</scratch>\n\n8",
            "</scratch>\r\n8",
            "</scratch>\n" + "</scratch>\n" * 50 + "8",
        ],  # fmt: skip
    }


def test_model_outputs_never_crash_and_are_counted_unparseable(capsys):
    rng = random.Random(3)
    tasks = {
        "addition": (AdditionTask(1, 3, 4, 2), "6 2 4 + 2 5 9"),
        "expression": (ExpressionTask(2, 4, 4, 2), "3 + 5 * 2 + 7"),
    }
    counts: Counter = Counter()
    for task_name, (task, _) in tasks.items():
        problem = task.eval_problems()[0]
        for kind, completions in output_cases(rng).items():
            for text in completions:
                answer = task.extract_answer(text)
                assert answer is None or isinstance(answer, str), (kind, text[:80])
                assert task.is_correct(answer, problem) in (True, False)
                steps = task.steps(text)
                assert "".join(steps) == text and steps
                assert len(task.step_labels(problem, text)) == len(steps)
                counts[(task_name, kind, answer is None)] += 1
                if kind in ("no answer", "unterminated scratchpad"):
                    assert answer is None, (task_name, kind, text[:80])
    total = sum(counts.values())
    TRIED["model outputs (addition, expression)"] += total
    unparseable = sum(n for (_, _, none), n in counts.items() if none)
    with capsys.disabled():
        print(f"\nmodel outputs: {total} tried, {unparseable} unparseable (answer None)")
    assert total > 1000 and unparseable > total * 0.8


def test_unparseable_outputs_are_counted_by_the_loop(tmp_path):
    """Through the loop's own sampling code, with a sampler that returns fixed texts (the
    tiny model cannot be made to write these): every None answer is counted unparseable."""
    from selftaught.progress import Reporter
    from selftaught.rollout import Rollout
    from selftaught.samplers import Generation, SamplingStats

    texts = ["", "garbage", "<scratch>\n1 + 2", "</scratch>\n٣", "</scratch>\n3", "\x00" * 9]

    class Scripted:
        def generate(self, prompts, num_samples, temperature, seed, progress=None):
            gens = [
                [Generation(texts[(i + j) % len(texts)], 1) for j in range(num_samples)]
                for i in range(len(prompts))
            ]
            return gens, SamplingStats()

    task = AdditionTask(1, 2, 4, 2)
    rollout = Rollout(task, Reporter(quiet=True), lambda model: Scripted())
    problems = task.train_problems()
    records, summary = rollout.sample(
        tmp_path, problems, phase="sample", seed=0, temperature=1.0, num_samples=3
    )
    assert len(records) == 12
    expected = sum(task.extract_answer(r["completion"]) is None for r in records)
    assert summary.unparseable == expected == sum(r["answer"] is None for r in records) > 0
    assert not any(r["correct"] for r in records if r["answer"] is None)
    TRIED["model outputs (through the loop)"] += len(records)


# -- damaged run directories for --resume ---------------------------------------------------
def make_run(root: Path) -> Path:
    """A run directory as `selftaught run` leaves it after iteration 0. Its model does not
    exist, so a damage that went unnoticed fails at once instead of running a loop."""
    store = RunStore(root)
    config = resolve({"model": {"name_or_path": str(root / "no-model")}, "iterations": 1})
    store.create(config)
    inputs = fingerprint(build_task(config.task), config)  # the data's; the model is none
    _write("inputs.json", json.dumps({**inputs, "model": {"weights": "-", "where": "-"}}))(root)
    store.iter_dir(0).mkdir(parents=True, exist_ok=True)
    (store.iter_dir(0) / "eval.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n'))
    row = {"iteration": 0, "method": "star", "accuracy": 0.0, "accuracy_by_bucket": {"1": 0.0}}
    store.write_metrics(0, row)
    store.complete(0, "eval", {"seconds": 0.0})
    sample = {"problem_id": "train-1-0", "bucket": "1", "sample": 0, "prompt": "p"}
    sample |= {"completion": "c", "answer": "2", "correct": True, "hinted": False, "reward": 1.0}
    write_jsonl(store.iter_dir(1) / "samples.jsonl.gz", [{**sample, "tokens": 1}])
    store.complete(1, "sample", {"seconds": 0.0})
    write_jsonl(store.iter_dir(1) / "rationalized.jsonl.gz", [])
    store.complete(1, "rationalize", {"seconds": 0.0})
    return root


DAMAGE = {
    "no state.json": lambda d: (d / "state.json").unlink(),
    "state.json not JSON": lambda d: (d / "state.json").write_text("{completed: ["),
    "state.json truncated": lambda d: (d / "state.json").write_text('{"completed": ["0/ev'),
    "state.json a list": lambda d: (d / "state.json").write_text("[]"),
    "state.json without completed": lambda d: (d / "state.json").write_text('{"last": 1}'),
    "state.json binary": lambda d: (d / "state.json").write_bytes(b"\xff\xfe\x00garbage"),
    "state.json odd phase": lambda d: (d / "state.json").write_text('{"completed": ["x"]}'),
    "output of a completed phase missing": lambda d: (d / "iter_0000" / "eval.jsonl.gz").unlink(),
    "stats.json garbled": lambda d: (d / "iter_0000" / "stats.json").write_text("{"),
    "config.yaml bad key": lambda d: (d / "config.yaml").write_text("train:\n  stpes: 3\n"),
    "config.yaml not YAML": lambda d: (d / "config.yaml").write_text("seed: [\n"),
    "config.yaml missing": lambda d: (d / "config.yaml").unlink(),
    "config.yaml latin-1": lambda d: (d / "config.yaml").write_bytes(b"seed: 1 # caf\xe9\n"),
    "not a directory": lambda d: None,
}
NAMED = {  # what the message must name
    "config.yaml bad key": "train.stpes",
    "config.yaml not YAML": "config.yaml:",
    "config.yaml missing": "config.yaml",
    "config.yaml latin-1": "not UTF-8",
    "output of a completed phase missing": "iter_0000/eval.jsonl.gz",
    "stats.json garbled": "stats.json",
    "not a directory": "not a run directory",
    "no state.json": "state.json",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_resume_of_a_damaged_run_directory_is_a_clear_error(tmp_path, damage):
    TRIED["damaged run directories"] += 1
    run_dir = make_run(tmp_path / "run") if damage != "not a directory" else tmp_path / "none"
    DAMAGE[damage](run_dir)
    through_cli(
        ["run", "--resume", run_dir, "-q"], NAMED.get(damage, "state.json"), watch=[run_dir]
    )


def test_store_reads_damaged_files_as_run_dir_errors(tmp_path):
    from selftaught.store import RunDirError, read_jsonl

    run_dir = make_run(tmp_path / "run")
    cases = {
        "torn gzip": (run_dir / "iter_0000" / "eval.jsonl.gz", gzip.compress(b'{"a": 1}\n')[:-6]),
        "not gzip": (run_dir / "iter_0000" / "eval.jsonl.gz", b"plain"),
        "bad line": (run_dir / "metrics.jsonl", b'{"iteration": 0}\n{"itera\n'),
        "not an object": (run_dir / "metrics.jsonl", b"[1, 2]\n"),
        "not UTF-8": (run_dir / "metrics.jsonl", b'{"a": "\xff"}\n'),
    }
    for name, (path, data) in cases.items():
        path.write_bytes(data)
        with pytest.raises(RunDirError, match=path.name) as err:
            read_jsonl(path)
        assert str(path) in str(err.value), name
    TRIED["damaged run files"] += len(cases)


# -- run directories damaged, for the commands that read them ----------------------------------
def _replace_with_fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _write(name: str, data: str | bytes | None):
    """A damage: ``RUN/name`` replaced by ``data`` (None: by a directory)."""

    def damage(run_dir: Path) -> None:
        path = run_dir / name
        if data is None:
            path.unlink()
            path.mkdir()
        else:
            path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return damage


SAMPLES = "iter_0001/samples.jsonl.gz"
READ_DAMAGE = {  # name: (the file it damages, how)
    "state.json missing": ("state.json", lambda d: (d / "state.json").unlink()),
    "state.json not JSON": ("state.json", _write("state.json", "{x")),
    "state.json a list": ("state.json", _write("state.json", "[]")),
    "state.json odd entry": ("state.json", _write("state.json", '{"completed": [1]}')),
    "state.json last": ("state.json", _write("state.json", '{"completed": [], "last": 5}')),
    "state.json deep": ("state.json", _write("state.json", "[" * 100_000 + "]" * 100_000)),
    "state.json huge integer": ("state.json", _write("state.json", "9" * 5000)),
    "state.json a directory": ("state.json", _write("state.json", None)),
    "config.yaml bad key": ("config.yaml", _write("config.yaml", "train:\n  stpes: 3\n")),
    "config.yaml not YAML": ("config.yaml", _write("config.yaml", "seed: [\n")),
    "config.yaml missing": ("config.yaml", lambda d: (d / "config.yaml").unlink()),
    "config.yaml a FIFO": ("config.yaml", lambda d: _replace_with_fifo(d / "config.yaml")),
    "config.yaml iterations true": ("config.yaml", _write("config.yaml", "iterations: true\n")),
    "metrics.jsonl torn": ("metrics.jsonl", _write("metrics.jsonl", '{"iteration": 0}\n{"it')),
    "metrics.jsonl not objects": ("metrics.jsonl", _write("metrics.jsonl", "[1]\n")),
    "metrics.jsonl rows without keys": ("metrics.jsonl", _write("metrics.jsonl", '{"a": 1}\n')),
    "metrics.jsonl wrong types": (
        "metrics.jsonl",
        _write("metrics.jsonl", '{"iteration": "0", "method": "star", "accuracy": "x", '
               '"accuracy_by_bucket": []}\n'),
    ),
    "metrics.jsonl deep": ("metrics.jsonl", _write("metrics.jsonl", "[" * 100_000 + "\n")),
    "stats.json garbled": ("stats.json", _write("iter_0000/stats.json", "{")),
    "stats.json not figures": ("stats.json", _write("iter_0000/stats.json", '{"eval": 3}')),
    "samples torn": ("samples", lambda d: _write(SAMPLES, (d / SAMPLES).read_bytes()[:-6])(d)),
    "samples not gzip": ("samples", _write(SAMPLES, "plain")),
    "samples rows without keys": ("samples", lambda d: write_jsonl(d / SAMPLES, [{"a": 1}])),
    "samples missing": ("samples", lambda d: (d / SAMPLES).unlink()),
    "inputs.json not JSON": ("inputs.json", _write("inputs.json", "{")),
    "inputs.json wrong shape": ("inputs.json", _write("inputs.json", '{"version": 1}')),
    "environment.json not JSON": ("environment.json", _write("environment.json", "[")),
    "environment.json not a list": ("environment.json", _write("environment.json", "{}")),
    "a file, not a directory": ("directory", lambda d: (shutil.rmtree(d), d.write_text("x"))),
    "no such directory": ("directory", lambda d: shutil.rmtree(d)),
}  # fmt: skip
READS = {  # what each command reads: a damage there must be an error naming the file
    "report": ("config.yaml", "metrics.jsonl", "stats.json", "environment.json", "directory"),
    "compare": ("config.yaml", "metrics.jsonl", "directory"),
    "refilter": ("config.yaml", "state.json", "samples", "inputs.json", "directory"),
}
NAMES = {"samples": "samples.jsonl.gz", "directory": "run"}


@pytest.mark.parametrize("damage", READ_DAMAGE)
def test_report_compare_and_refilter_on_a_damaged_run(tmp_path, damage):
    """Each command that reads a run either does without the damaged file or names it."""
    file, hurt = READ_DAMAGE[damage]
    for command, reads in READS.items():
        run_dir = make_run(tmp_path / command / "run")
        hurt(run_dir)
        args = {
            "report": ["report", run_dir],
            "compare": ["compare", run_dir, "--out", tmp_path / command / "compare"],
            "refilter": ["refilter", run_dir, "--iteration", "1"],
        }[command]
        watch = [run_dir, tmp_path / command / "compare"]
        through_cli(args, NAMES.get(file, file), watch=watch, may_pass=file not in reads)
        TRIED[f"damaged run directories through `selftaught {command}`"] += 1


def test_bad_model_paths_through_run_and_eval(tmp_path, tiny_model):
    """Each broken checkpoint of test_user_errors, through `run` (before a run directory
    exists) and `eval`."""
    for kind, (breaks, phrase) in BAD_MODELS.items():
        model = tmp_path / kind / "model"
        shutil.copytree(tiny_model, model)
        breaks(model)
        out = tmp_path / kind / "run"
        args = ["run", "--out", out, "-q", "--set", f"model.name_or_path={model}"]
        base = ["--set", "base=null"]  # the default config's base is the built-in model's
        through_cli([*args, *base], phrase, watch=[model, out])
        through_cli(["eval", model], phrase, watch=[model])
        TRIED["bad model paths through `selftaught run` and `eval`"] += 2


def test_odd_override_values_through_the_command_line():
    for key in ("iterations", "train.lr", "sampling.max_new_tokens"):
        for value in OVERRIDE_VALUES:
            through_cli(["config", "--set", f"{key}={value}"], key, may_pass=True)
            TRIED["config: --set values through `selftaught config`"] += 1


def test_special_files_and_places_through_the_command_line(tmp_path):
    tried = CLI["tried"]
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for config, phrase in [(fifo, "FIFO"), ("/dev/zero", "character device")]:
        through_cli(["config", config], phrase, watch=[a_file])
        through_cli(["run", config, "--out", tmp_path / "r"], phrase, watch=[a_file])
    for out in ("/dev/null/run", a_file, a_file / "x"):
        through_cli(["run", "--out", out, "-q"], "cannot be a run directory", watch=[a_file])
    for resume in ("/dev/null", a_file, tmp_path / "missing"):
        through_cli(["run", "--resume", resume, "-q"], "not a run directory", watch=[a_file])
    data = tmp_path / "data.jsonl"
    os.mkfifo(data)
    config = tmp_path / "data.yaml"
    config.write_text(
        yaml.safe_dump({"task": {"name": "jsonl", "path": str(data)}, "base": {"max_size": 1}})
    )
    through_cli(["run", config, "--out", tmp_path / "r"], "not a regular file", watch=[config])
    assert not (tmp_path / "r").exists()
    TRIED["special files and places through the command line"] += CLI["tried"] - tried


# -- data files: the data loaders of selftaught/tasks/sources.py ------------------------------
def data_cases(rng: random.Random) -> dict[str, bytes]:
    good = json.dumps({"question": "What is 2 + 2?", "answer": "4"})
    line = good.encode() + b"\n"
    return {
        "truncated JSON": line * 3 + good[: len(good) // 2].encode() + b"\n",
        "truncated at EOF": line * 3 + good[:-1].encode(),
        "missing field": line * 3 + b'{"question": "q"}\n',
        "wrong field type": line * 3 + b'{"question": ["q"], "answer": "1"}\n',
        "not an object": line * 3 + b"[1, 2]\n",
        "latin-1": line * 3 + '{"question": "café?", "answer": "1"}\n'.encode("latin-1"),
        "utf-16": (good + "\n").encode("utf-16") * 2,
        "empty file": b"",
        "blank lines only": b"\n\n   \n",
        "huge garbage line": line * 3 + b"x" * 2_000_000 + b"\n",
        "NUL bytes": line * 3 + b"\x00\x00\x00\n",
        "an integer of 5000 digits": line * 3
        + b'{"question": "q", "answer": '
        + b"9" * 5000
        + b"}\n",
        "nested 100000 deep": line * 3
        + b'{"question": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}\n",
        **{
            f"random bytes {i}": bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            for i in range(40)
        },
        **{f"cut at byte {i}": (line * 4)[: len(line) * 3 + i] for i in range(1, len(line) - 1, 7)},
    }


def test_data_files_fail_with_file_and_line_or_load(tmp_path):
    from selftaught.tasks import build_task
    from selftaught.tasks.sources import DataError

    rng = random.Random(4)
    outcomes: Counter = Counter()
    cases = data_cases(rng)
    for name, content in cases.items():
        path = tmp_path / "rows.jsonl"
        path.write_bytes(content)
        raw = {
            "task": {"name": "jsonl", "path": str(path), "eval_size": 1},
            "base": {"max_size": 1},
        }
        try:
            build_task(resolve(raw).task)
            outcomes["loaded"] += 1
        except DataError as err:
            assert str(path) in str(err), (name, str(err))
            assert len(str(err)) < 1000, name  # a huge line is not echoed whole
            outcomes["DataError"] += 1
    TRIED["data files"] += len(cases)
    assert outcomes["DataError"] >= len(cases) - 5, outcomes  # "cut" cases may still load


def test_a_bad_data_file_on_the_command_line(tmp_path):
    """`selftaught run` on a data task whose file is damaged: exit 2 naming file and line,
    no traceback, and no run directory left to resume."""
    cases = {k: v for k, v in data_cases(random.Random(5)).items() if not k.startswith("cut")}
    for name, content in list(cases.items())[:20]:  # every named case, and 7 random ones
        path = tmp_path / "rows.jsonl"
        path.write_bytes(content)
        out = tmp_path / "run"
        config = tmp_path / "data-task.yaml"
        task = {"name": "jsonl", "path": str(path), "eval_size": 1}
        raw = {"task": task, "base": {"max_size": 1}, "model": {"name_or_path": "/no/model"}}
        config.write_text(yaml.safe_dump(raw))
        through_cli(["run", config, "--out", out, "-q"], str(path), watch=[path, config, out])
        assert not out.exists(), name
        TRIED["data files through `selftaught run`"] += 1


def test_a_huge_valid_line_loads(tmp_path):
    from selftaught.tasks import build_task

    rows = [{"question": "q" * 1_000_000, "answer": "1"}] + [
        {"question": f"q{i}", "answer": str(i)} for i in range(3)
    ]
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    raw = {"task": {"name": "jsonl", "path": str(path), "eval_size": 1}, "base": {"max_size": 1}}
    task = build_task(resolve(raw).task)
    assert len(task.train_problems()) + len(task.eval_problems()) == 4
    TRIED["data files"] += 1


# -- the tally -----------------------------------------------------------------------------
def test_zz_report_how_many_cases_were_tried(capsys):
    """Runs last (by name): what the suite tried, by kind."""
    total = sum(TRIED.values())
    with capsys.disabled():
        print(f"\nfuzz: {total} bad-input cases tried")
        for kind, n in sorted(TRIED.items()):
            print(f"  {n:6d}  {kind}")
        print(
            f"through the command line: {CLI['tried']} bad inputs, {CLI['tracebacks']} "
            f"tracebacks, {CLI['files lost or changed']} files lost or changed, "
            f"{CLI['accepted (valid after all)']} accepted as valid after all"
        )
    assert CLI["tracebacks"] == CLI["files lost or changed"] == 0
    if total:  # under -k only part of the suite runs
        assert total >= 100
