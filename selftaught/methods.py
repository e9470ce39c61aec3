"""Methods are config defaults, not subclasses: a preset is the dict a method puts
under the user's config, so every behaviour stays one visible key a user can override."""

from __future__ import annotations

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
}


def preset_for(method: str) -> dict:
    if method not in PRESETS:
        raise KeyError(f"unknown method {method!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[method]
