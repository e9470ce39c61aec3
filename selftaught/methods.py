"""Methods are config defaults, not subclasses: a preset is the dict a method puts
under the user's config, so every behaviour stays one visible key a user can override.

Add ``reward.enabled: true`` (and, outside B-STaR, a ``selection.threshold``) to any of
them for its "w/ RM" variant (B-STaR's Table 1)."""

from __future__ import annotations

_RFT_SAMPLING = {"temperature": 0.8, "num_samples": 4}

# B-STaR (Zeng et al. 2024): Online RFT whose temperature and reward threshold are
# re-chosen every round by the balance score; the threshold replaces the correct filter.
_BSTAR = {
    "rationalization": False,
    "sampling": {**_RFT_SAMPLING, "queries_per_round": 256},
    "selection": {"require_correct": False},
    "bstar": {"enabled": True},
    "train": {"init": "previous", "continuous": True, "steps": 100, "steps_increment": 0},
}

PRESETS: dict[str, dict] = {
    # STaR (Zelikman et al. 2022): greedy, one rationale per problem, rationalization
    # for the failures, every iteration fine-tunes the base model M again.
    "star": {
        "rationalization": True,
        "sampling": {"temperature": 0.0, "num_samples": 1},
        "train": {"init": "base"},
    },
    # The paper's ablation: the same loop without rationalization.
    "star-norat": {
        "rationalization": False,
        "sampling": {"temperature": 0.0, "num_samples": 1},
        "train": {"init": "base"},
    },
    # ReST-EM (Singh et al. 2023): K samples per problem at temperature T, the correct
    # ones (capped per problem) kept, every iteration restarts from M.
    "rest-em": {
        "rationalization": False,
        "sampling": _RFT_SAMPLING,
        "selection": {"max_per_problem": 4},
        "train": {"init": "base"},
    },
    # Iterative RFT: the same data, but each iteration continues the previous model.
    "iterative-rft": {
        "rationalization": False,
        "sampling": _RFT_SAMPLING,
        "selection": {"max_per_problem": 4},
        "train": {"init": "previous"},
    },
    # Online RFT: one continuous training run; each round (iteration) samples a fresh
    # batch of queries from the current model and trains ``train.steps`` more steps.
    "online-rft": {
        "rationalization": False,
        "sampling": {**_RFT_SAMPLING, "queries_per_round": 256},
        "train": {"init": "previous", "continuous": True, "steps": 100, "steps_increment": 0},
    },
    "bstar": _BSTAR,
    # The paper's Table 3 ablations: one of the two re-chosen each round, the other fixed.
    # Temperature only: tau stays selection.threshold; 0.5 keeps exactly the correct answers
    # (a wrong one scores at most 0.2 with selftaught's reward models, a right one 1.0 or
    # more), Online RFT's filter.
    "bstar-temperature": {
        **_BSTAR,
        "selection": {"require_correct": False, "threshold": 0.5},
        "bstar": {"enabled": True, "adjust": "temperature"},
    },
    # Threshold only: every round samples at sampling.temperature, Online RFT's 0.8.
    "bstar-threshold": {**_BSTAR, "bstar": {"enabled": True, "adjust": "threshold"}},
}
# Online RFT at a fixed (T, tau), the paper's Table 6, is online-rft with keys:
# selection.require_correct: false, selection.threshold: tau, sampling.temperature: T
# (and reward.enabled: true for a reward model's tau).


def preset_for(method: str) -> dict:
    if not isinstance(method, str) or method not in PRESETS:  # a list or mapping: unhashable
        raise KeyError(f"unknown method {method!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[method]
