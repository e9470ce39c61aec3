"""Sampling behind one small interface, ``Sampler.generate``; a sampler that holds
processes (a vLLM engine, Ray workers) is also an ``EngineSampler``, with ``reload`` and
``close``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Generation:
    text: str
    tokens: int  # generated tokens, the end-of-sequence token included


@dataclass
class SamplingStats:
    tokens: int = 0
    seconds: float = 0.0


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to its first stop string: what a task's answer is read from and what is
    stored and trained on, never the run-on after it."""
    cuts = [text.index(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


class Progress(Protocol):
    def __call__(self, generations: int, tokens: int = 0) -> None:
        """Called as a batch finishes: its generations, and the tokens they hold."""


class Sampler(Protocol):
    def generate(
        self,
        prompts: list[str],
        num_samples: int,
        temperature: float,
        seed: int,
        progress: Progress | None = None,
    ) -> tuple[list[list[Generation]], SamplingStats]:
        """``num_samples`` generations per prompt, in prompt order; greedy when temperature is 0."""


class EngineSampler(Sampler, Protocol):
    """A sampler whose start is costly (an engine, a cluster): kept across training
    phases and pointed at each new checkpoint, and closed when done (``VLLMSampler``,
    ``RaySampler``; ``HFSampler`` is neither: a new one per model is cheap)."""

    def reload(self, model_path: str | Path) -> None:
        """Sample from ``model_path`` from now on."""

    def close(self) -> None:
        """Stop the processes this sampler holds."""
