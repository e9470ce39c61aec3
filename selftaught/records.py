"""What a run writes, defined once: a sample, an evaluation result, each phase's figures
(``stats.json``) and the metrics row (``metrics.jsonl``). The loop writes these, and
``report``, ``plots`` and ``compare`` read them back through the same classes.

Samples and evaluation results stay plain dicts on their way through the pure modules
(``selection``, ``bstar``, ``metrics``), which read a few keys of many rows; their keys are
declared here as ``TypedDict``s. Phase figures and metrics rows are dataclasses: each is
written by one phase and read by others, which name its fields rather than string keys.
JSON keys keep their order, so a run directory's bytes do not depend on this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, NotRequired, Self, TypedDict


class SampleRecord(TypedDict):
    """One generation, as ``samples.jsonl.gz``, ``rationalized.jsonl.gz`` and
    ``search.jsonl.gz`` hold it."""

    problem_id: str
    bucket: str
    sample: int  # index among the problem's samples in this phase
    prompt: str
    completion: str
    answer: str | None  # the extracted answer; None: unparseable
    correct: bool
    hinted: bool  # sampled with the answer as a hint (rationalization)
    temperature: float
    tokens: int  # generated, the end-of-sequence token included
    step_scores: NotRequired[list[float]]  # with a reward model
    reward: NotRequired[float]  # B-STaR's score, else 1[correct]; absent: not scored


class EvalResult(TypedDict):
    """One greedy answer to a held-out problem (``eval.jsonl.gz``)."""

    problem_id: str
    bucket: str
    completion: str
    answer: str | None
    correct: bool
    valid: NotRequired[bool]  # tasks with per-step gold: right, and every step valid


class TrainRow(TypedDict):
    """One training example (``train.jsonl``): exactly what was trained on, the prompt
    without the hint."""

    prompt: str
    completion: str
    problem_id: str
    rationalized: bool
    correct: bool
    reward: float


# -- each phase's figures (``iter_NNNN/stats.json``) -----------------------------------------
@dataclass
class PhaseStats:
    """Base of a phase's figures: written with ``to_json``, read with ``from_json``, which
    ignores keys it does not know and defaults the ones a run of an older version lacks."""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class RolloutStats(PhaseStats):
    """What one call of ``Rollout.sample`` generated."""

    seconds: float = 0.0
    tokens: int = 0
    samples: int = 0
    correct: int = 0
    unparseable: int = 0
    temperature: float = 0.0
    seed: int = 0


@dataclass
class SampleStats(RolloutStats):
    distinct_correct: float | None = None


@dataclass
class RationalizeStats(RolloutStats):
    attempted: int = 0  # problems the greedy samples failed, sampled again with the hint


@dataclass
class SearchStats(PhaseStats):
    """B-STaR's choice on the search subset; ``scores``: the best balance score per
    temperature, keyed ``f"{T:g}"``."""

    temperature: float = 0.0
    threshold: float | None = None
    balance_score: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    seed: int = 0


@dataclass
class TrainStats(PhaseStats):
    seconds: float = 0.0
    tokens: int = 0
    steps: int = 0
    loss: float | None = None
    examples: int = 0
    rationalized: int = 0
    selected_accuracy: float = 0.0
    # tasks with per-step gold: the share trained on that is right with every step valid
    selected_valid_accuracy: float | None = None
    threshold: float | None = None  # the reward threshold applied (B-STaR: chosen here)
    balance_score: float | None = None
    init: str = "base"  # "base" or "iteration N": the weights training started from
    init_checksum: str | None = None
    seed: int = 0
    # peak resident memory of the training process during the phase, loading included
    # (the main process's under accelerate launch); None: not measured
    peak_rss_mb: float | None = None
    # "bf16" or "no": train.mixed_precision as this machine resolved it ("auto" is per device)
    mixed_precision: str = "no"


@dataclass
class EvalStats(PhaseStats):
    seconds: float = 0.0
    tokens: int = 0
    seed: int = 0  # of the pass@k samples; greedy evaluation draws nothing
    # pass@k, pass@k-s, distinct correct, best-of-k, valid pass@k: when sampled
    exploration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.exploration is None:  # absent rather than null, as runs have always had it
            del data["exploration"]
        return data


@dataclass
class RewardStats(PhaseStats):
    """Iteration 0's verifier: what it was trained on and how training went."""

    samples: dict[str, Any] = field(default_factory=dict)  # RolloutStats of M's samples
    examples: int = 0
    positive_share: float = 0.0
    steps: int = 0
    loss: float | None = None
    seconds: float = 0.0
    seed: int = 0


# -- the metrics row (``metrics.jsonl``, one per iteration; 0 is the base model) -------------
def _key(name: str, *, omit_none: bool = False) -> Any:
    """A field stored under another JSON key (``pass@k``), or left out while None."""
    return field(default=None, metadata={"key": name, "omit_none": omit_none})


@dataclass
class MetricsRow:
    iteration: int
    method: str
    accuracy: float  # greedy, on the held-out set
    accuracy_by_bucket: dict[str, float]
    # tasks with per-step gold: greedy answers right with every step valid
    valid_accuracy: float | None = _key("valid_accuracy", omit_none=True)
    valid_accuracy_by_bucket: dict[str, float] | None = _key(
        "valid_accuracy_by_bucket", omit_none=True
    )
    pass_at_1: float | None = _key("pass@1")
    # with eval.num_samples: exploration at temperature eval.temperature
    pass_at_k: dict[str, float] | None = _key("pass@k", omit_none=True)
    pass_at_k_s: dict[str, float] | None = _key("pass@k-s", omit_none=True)
    # ... counting only answers reached by valid steps (tasks with per-step gold)
    valid_pass_at_k: dict[str, float] | None = _key("valid_pass@k", omit_none=True)
    # ... distinct correct rationales per held-out problem: the same problems every round,
    # unlike distinct_correct, over the round's fresh problems
    eval_distinct_correct: float | None = _key("eval_distinct_correct", omit_none=True)
    # ... share of held-out problems whose highest-reward sample is right (with a reward model)
    best_of_k_accuracy: float | None = _key("best_of_k_accuracy", omit_none=True)
    problems: int = 0
    generated_correct: int = 0
    distinct_correct: float | None = None
    rationalization_attempts: int = 0
    rationalized: int = 0
    train_examples: int = 0
    selected_accuracy: float | None = None
    selected_valid_accuracy: float | None = _key("selected_valid_accuracy", omit_none=True)
    train_steps: int = 0
    train_loss: float | None = None
    temperature: float | None = None
    threshold: float | None = None
    balance_score: float | None = None
    search_balance_scores: dict[str, float] | None = None
    unparseable: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per phase, in phase order
    tokens_per_second: dict[str, float] = field(default_factory=dict)

    EXPLORATION_KEYS: ClassVar[tuple[str, ...]] = (
        "pass@k",
        "pass@k-s",
        "valid_pass@k",
        "eval_distinct_correct",
        "best_of_k_accuracy",
    )

    def to_json(self) -> dict[str, Any]:
        data = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            data[f.metadata.get("key", f.name)] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        by_key = {f.metadata.get("key", f.name): f.name for f in dataclasses.fields(cls)}
        return cls(**{by_key[k]: v for k, v in data.items() if k in by_key})

    def exploration(self, key: str) -> dict[str, float]:
        """``pass@k``, ``pass@k-s`` or ``valid_pass@k`` by its JSON key, empty when not
        measured."""
        by_key = {
            "pass@k": self.pass_at_k,
            "pass@k-s": self.pass_at_k_s,
            "valid_pass@k": self.valid_pass_at_k,
        }
        return by_key[key] or {}
