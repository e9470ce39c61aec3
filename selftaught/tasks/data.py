"""Rows of a data set, from a hub name or a local file, and what every data task shares.

Sources (``task.path`` / ``task.eval_path``):

- a local ``.jsonl`` file (one JSON object per line; blank lines are skipped), read here
  line by line so that a bad line fails as ``file:line: what was expected``;
- a local ``.json`` file: an array of objects, or JSON lines;
- a local ``.parquet`` file (pyarrow);
- a local directory: the file named after the split in it (``train.jsonl``, ``test.json``,
  ``validation.parquet``), so ``path: ../shared/datasets/gsm8k`` reads ``train.jsonl`` for
  training and ``test.jsonl`` for evaluation;
- anything else that looks like a hub name (``openai/gsm8k``, ``gsm8k``):
  ``datasets.load_dataset(path, subset, split=split)``.

Held-out rows: from ``eval_path`` (or the same hub name or directory) at ``eval_split``.
When training and evaluation would read the very same rows (one local file and no
``eval_path``, or the same split twice) ``eval_size`` rows are held out by the seed and
training draws from the rest, so the two never overlap. ``train_size`` / ``eval_size`` pick
a deterministic subset with ``seed`` (rows keep their file order).

Every data task's prompt is plain text (a chat template, if any, is the sampler's job)::

    <instruction>

    Question: <exemplar question>
    Answer: <exemplar rationale>
    The answer is <exemplar answer>.

    Question: <question>
    [(Hint: the answer is <gold>)]
    Answer:
"""

from __future__ import annotations

import codecs
import json
import logging
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftaught.tasks.base import Example, Problem, Task

if TYPE_CHECKING:
    from selftaught.config import DataTaskConfig

log = logging.getLogger(__name__)

EXTENSIONS = (".jsonl", ".json", ".parquet")
QUESTION = "Question: "
ANSWER = "Answer:"
RUN_ON = "\n" + QUESTION.strip()  # a completion that runs on into the next question


class DataError(ValueError):
    """A data file or row is not what the task expects; the message names file and line."""


@dataclass(frozen=True)
class Record:
    """One row and where it came from (``file:line``, ``file: item 3``, ``hub ... row 3``)."""

    where: str
    index: int  # 0-based position among the source's rows
    row: dict

    def get(self, *names: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
        """The first of ``names`` present in the row, checked to be of ``kind``."""
        for name in names:
            if name in self.row and self.row[name] is not None:
                value = self.row[name]
                if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                    raise DataError(
                        f"{self.where}: field {name!r} is {_json_type(value)} {_short(value)}; "
                        f"expected {_kind_name(kind)}"
                    )
                return value
        if not required:
            return None
        wanted = " or ".join(repr(n) for n in names)
        has = ", ".join(repr(k) for k in self.row) or "no fields"
        raise DataError(f"{self.where}: missing field {wanted} (the row has {has})")

    def fail(self, what: str) -> DataError:
        return DataError(f"{self.where}: {what}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", dict: "an object"}
    names |= {list: "an array", bool: "a boolean"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"({text[:60]}...)" if len(text) > 60 else f"({text})"


# -- local files -------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[Record]:
    """One object per line; blank lines are skipped; the first bad line fails with its number."""
    records: list[Record] = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            where = f"{path}:{number}"
            if number == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise DataError(f"{where}: the file is UTF-16 text; expected UTF-8")
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{where}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                    f"{err.start + 1}); expected UTF-8 JSON"
                ) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as err:
                truncated = err.pos >= len(text.rstrip())
                why = " (the line ends early: truncated?)" if truncated else ""
                raise DataError(
                    f"{where}: not valid JSON: {err.msg} at column {err.colno}{why}; "
                    "expected one JSON object per line"
                ) from None
            if not isinstance(row, dict):
                raise DataError(
                    f"{where}: expected a JSON object {{...}} per line, got {_json_type(row)}"
                )
            records.append(Record(where, len(records), row))
    if not records:
        raise DataError(f"{path}: empty file; expected one JSON object per line")
    return records


def read_json(path: Path) -> list[Record]:
    """A JSON array of objects, or JSON lines in a ``.json`` file."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}:1: the file is UTF-16 text; expected UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); expected UTF-8 JSON"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty file; expected a JSON array of objects, or JSON lines")
    if not text.lstrip().startswith("["):
        return read_jsonl(path)
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        truncated = err.pos >= len(text.rstrip())
        why = " (the file ends early: truncated?)" if truncated else ""
        raise DataError(
            f"{path}:{err.lineno}: not valid JSON: {err.msg} at column {err.colno}{why}"
        ) from None
    if not rows:
        raise DataError(f"{path}: an empty array; expected an array of objects")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {i}: expected a JSON object, got {_json_type(row)}")
    return [Record(f"{path}: item {i}", i, row) for i, row in enumerate(rows)]


def read_parquet(path: Path) -> list[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a bad file
        raise DataError(f"{path}: not a readable Parquet file: {err}") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return [Record(f"{path}: row {i}", i, row) for i, row in enumerate(rows)]


def read_local(path: Path) -> list[Record]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path)
    if suffix == ".json":
        return read_json(path)
    if suffix == ".parquet":
        return read_parquet(path)
    raise DataError(f"{path}: unknown file type {suffix!r}; expected one of {EXTENSIONS}")


def split_file(directory: Path, split: str) -> Path:
    """``directory/<split>.jsonl`` (or ``.json`` / ``.parquet``): exactly one must exist."""
    found = [directory / f"{split}{ext}" for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(f"{directory}: several files for split {split!r}: {found}")
    have = sorted(p.name for p in directory.iterdir() if p.suffix in EXTENSIONS)
    raise DataError(
        f"{directory}: no {split}.jsonl, {split}.json or {split}.parquet for split {split!r} "
        f"(the folder has {', '.join(have) or 'no data files'})"
    )


# -- hub -----------------------------------------------------------------------------------
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_hub_name(text: str) -> bool:
    """``openai/gsm8k`` or ``gsm8k``; not ``data/x.jsonl``, ``./x``, ``a/b/c`` or ``~/x``."""
    return bool(_HUB_NAME.fullmatch(text)) and not text.lower().endswith(
        (*EXTENSIONS, ".csv", ".txt", ".gz")
    )


def read_hub(name: str, subset: str | None, split: str) -> list[Record]:
    """``datasets.load_dataset(name, subset, split=split)``: needs the network or HF's cache."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            f"{name!r} is not a local file, and reading a hub data set needs the datasets "
            "package (pip install datasets)"
        ) from None
    what = f"hub data set {name!r}" + (f" ({subset})" if subset else "") + f" split {split!r}"
    try:
        rows = datasets.load_dataset(name, subset, split=split)
    except Exception as err:  # datasets raises many types: name, network, config, split
        raise DataError(
            f"{what}: {type(err).__name__}: {err} (it is not a local file or folder either)"
        ) from None
    return [Record(f"{what} row {i}", i, dict(row)) for i, row in enumerate(rows)]


# -- a source ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """Where one split's rows come from: a local file, or a hub name with subset and split."""

    path: str
    subset: str | None = None
    split: str = "train"

    def resolve(self, base: Path | None = None) -> tuple[str, ...]:
        """An identity: two sources with the same one give the same rows."""
        local = Path(self.path).expanduser()
        if base is not None and not local.is_absolute():
            local = base / local
        if local.is_dir():
            return ("file", str(split_file(local, self.split).resolve()))
        if local.is_file():
            return ("file", str(local.resolve()))
        if looks_like_hub_name(self.path):
            return ("hub", self.path, self.subset or "", self.split)
        near = ""
        if local.parent.is_dir():
            names = sorted(p.name for p in local.parent.iterdir())[:8]
            near = f"; {local.parent} has {', '.join(names) or 'nothing'}"
        raise DataError(
            f"{self.path}: no such file or folder, and not a hub data set name "
            f"(expected a .jsonl/.json/.parquet file, a folder of them, or a name like "
            f"'openai/gsm8k'){near}"
        )

    def read(self, base: Path | None = None) -> list[Record]:
        identity = self.resolve(base)
        if identity[0] == "file":
            return read_local(Path(identity[1]))
        return read_hub(self.path, self.subset, self.split)


def pick(records: list[Record], size: int | None, seed: int, salt: str, key: str) -> list:
    """``size`` rows chosen by the seed, in their original order; all rows when ``size`` is None."""
    if size is None:
        return list(records)
    if size > len(records):
        raise DataError(f"task.{key}: {size} rows asked for, the data has only {len(records)}")
    chosen = random.Random(f"{salt}-{seed}").sample(range(len(records)), size)
    return [records[i] for i in sorted(chosen)]


def load_splits(config: DataTaskConfig, base: Path | None = None) -> tuple[list, list]:
    """The training and held-out records of a data task's config (see the module doc)."""
    train_src = Source(config.path, config.subset, config.split)
    eval_src = Source(config.eval_path or config.path, config.subset, config.eval_split)
    train_id, eval_id = train_src.resolve(base), eval_src.resolve(base)
    train_rows = train_src.read(base)
    if train_id == eval_id:
        if config.eval_size is None:
            raise DataError(
                f"task.eval_size: training and evaluation would both read {train_id[1]}; set "
                "eval_size to hold out that many of its rows, or set task.eval_path"
            )
        if config.eval_size >= len(train_rows):
            raise DataError(
                f"task.eval_size: {config.eval_size} held-out rows leave none of the "
                f"{len(train_rows)} in {train_id[1]} for training"
            )
        order = list(range(len(train_rows)))
        random.Random(f"{config.name}-holdout-{config.seed}").shuffle(order)
        held = set(order[: config.eval_size])
        eval_rows = [r for r in train_rows if r.index in held]
        train_rows = [r for r in train_rows if r.index not in held]
        train = pick(
            train_rows, config.train_size, config.seed, f"{config.name}-train", "train_size"
        )
        return train, eval_rows
    eval_rows = eval_src.read(base)
    return (
        pick(train_rows, config.train_size, config.seed, f"{config.name}-train", "train_size"),
        pick(eval_rows, config.eval_size, config.seed, f"{config.name}-eval", "eval_size"),
    )


# -- few-shot exemplars ------------------------------------------------------------------
@dataclass(frozen=True)
class Exemplar:
    question: str
    rationale: str
    answer: str
    choices: Any = None  # multiple choice: as in the task's rows, or None


def load_exemplars(path: str | None, count: int, base: Path | None = None) -> list[Exemplar]:
    """The first ``count`` exemplars of a JSONL of ``{question, rationale, answer}`` (all of
    them when ``count`` is 0)."""
    if path is None:
        if count:
            raise DataError(f"task.few_shot: {count} exemplars need task.few_shot_path")
        return []
    file = Path(path).expanduser()
    if base is not None and not file.is_absolute():
        file = base / file
    if not file.is_file():
        raise DataError(f"task.few_shot_path: {path}: no such file (expected a JSONL file)")
    records = read_local(file)
    if count > len(records):
        raise DataError(f"task.few_shot: {count} exemplars asked for, {file} has {len(records)}")
    out = []
    for r in records[: count or len(records)]:
        answer = r.get("answer", kind=(str, int, float))
        out.append(
            Exemplar(
                r.get("question"),
                r.get("rationale"),
                str(answer),
                r.get("choices", kind=(dict, list), required=False),
            )
        )
    return out


# -- steps -----------------------------------------------------------------------------------
def split_lines(completion: str) -> list[str]:
    """One step per line, each with its newline (blank lines stay with the line before);
    ``"".join(steps) == completion``; ``""`` is one empty step."""
    return re.findall(r"[^\n]*\n+|[^\n]+$", completion) or [completion]


def split_paragraphs(completion: str) -> list[str]:
    """One step per paragraph (cut after each run of two or more newlines)."""
    return re.findall(r"(?s).+?(?:\n\n+|\Z)|\n\n+", completion) or [completion]


# -- what the data tasks share ---------------------------------------------------------------
class DataTask(Task):
    """A task read from a data set; subclasses say how a row becomes a Problem and how an
    answer is read and checked.

    ``step_labels``: real data has no per-step gold, so every step gets the outcome label
    (the completion's answer is right or not), as an outcome-supervised reward model would
    see it; a process reward model trained on these learns outcome prediction per prefix.
    """

    name = "data"
    instruction = ""
    hint_word = "hint"  # leaks_hint: a completion that mentions it is never trained on

    def __init__(self, config: DataTaskConfig, base: Path | None = None):
        self.config = config
        train, held_out = load_splits(config, base)
        self._train = self._problems(train, "train")
        self._eval = self._problems(held_out, "eval")
        if {p.id for p in self._train} & {p.id for p in self._eval}:  # two files' own ids
            self._eval = [replace(p, id=f"eval-{p.id}") for p in self._eval]
        self.exemplars = load_exemplars(config.few_shot_path, config.few_shot, base)
        self._prefix = self._render_prefix()
        buckets = {p.bucket for p in self._train + self._eval}
        self.sizes = sorted(int(b) for b in buckets if b.isdigit()) or [1]
        questions = {e.question.strip() for e in self.exemplars}
        shared = [p.id for p in self._eval if p.question.strip() in questions]
        if shared:
            log.warning("%s: few-shot exemplars repeat held-out problems %s", self.name, shared)

    # -- rows -> problems ------------------------------------------------------------------
    def problem(self, record: Record, role: str) -> Problem:
        raise NotImplementedError

    def _problems(self, records: list[Record], role: str) -> list[Problem]:
        problems = [self.problem(r, role) for r in records]
        ids = [p.id for p in problems]
        if len(set(ids)) != len(ids):  # the rows' own ids repeat: fall back to positions
            problems = [
                replace(p, id=f"{role}-{r.index}") for r, p in zip(records, problems, strict=True)
            ]
        return problems

    @staticmethod
    def row_id(record: Record, role: str) -> str:
        for key in ("id", "unique_id"):
            value = record.row.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return f"{role}-{record.index}"

    def train_problems(self) -> list[Problem]:
        return list(self._train)

    def eval_problems(self) -> list[Problem]:
        return list(self._eval)

    def seed_examples(
        self, count: int, sizes: list[int], hinted_fraction: float, salt: str = "seed"
    ) -> list[Example]:
        raise NotImplementedError(
            f"task {self.name!r}: seed examples exist only to train the built-in tiny model; "
            "a data task needs a pretrained model (model.name_or_path) and, if it helps, "
            "few-shot exemplars (task.few_shot_path, task.few_shot)"
        )

    def reference(self, problem: Problem) -> str | None:
        """The row's worked solution, else its gold answer in the asked format: B-STaR's
        balance score needs only a known-correct response per query, and never trains on it
        or merges it with a sample, so its text does not matter (``bstar.with_references``)."""
        return problem.reference or self.answer_text(problem.answer)

    # -- text -----------------------------------------------------------------------------
    def answer_text(self, answer: str) -> str:
        """The final line of a rationale: what the prompt asks the model to end with."""
        return f"The answer is {answer}."

    def render_question(self, question: str, choices: Any = None) -> str:
        return question.strip()

    def completion(self, rationale: str, answer: str) -> str:
        """A worked answer in the format the prompt asks for (exemplars, references)."""
        return f" {rationale.strip()}\n{self.answer_text(answer)}"

    def _render_prefix(self) -> str:
        parts = [self.instruction + "\n\n"] if self.instruction else []
        for e in self.exemplars:
            question = self.render_question(e.question, e.choices)
            parts.append(
                f"{QUESTION}{question}\n{ANSWER}{self.completion(e.rationale, e.answer)}\n\n"
            )
        return "".join(parts)

    def hinted_question(self, problem: Problem) -> str:
        return f"{problem.question}\n(Hint: the answer is {problem.answer})"

    def prompt(self, problem: Problem, hint: bool = False) -> str:
        question = self.hinted_question(problem) if hint else problem.question
        return f"{self._prefix}{QUESTION}{question}\n{ANSWER}"

    def leaks_hint(self, completion: str) -> bool:
        return re.search(rf"\b{re.escape(self.hint_word)}", completion, re.IGNORECASE) is not None

    # -- answers ------------------------------------------------------------------------------
    @staticmethod
    def own_part(completion: str) -> str:
        """The completion up to where it runs on into a new ``Question:`` of its own."""
        return completion.split(RUN_ON, 1)[0]

    def extract_answer(self, completion: str) -> str | None:
        raise NotImplementedError

    def is_correct(self, answer: str | None, problem: Problem) -> bool:
        raise NotImplementedError

    # -- steps --------------------------------------------------------------------------------
    def steps(self, completion: str) -> list[str]:
        """One step per line (see ``split_lines``)."""
        return split_lines(completion)

    def step_labels(self, problem: Problem, completion: str) -> list[bool]:
        """The outcome label for every step: real data has no per-step gold."""
        correct = self.is_correct(self.extract_answer(completion), problem)
        return [correct] * len(self.steps(completion))
