"""The training loop that the policy (``HFTrainer.fit``) and the reward model
(``train_reward_model``) share: AdamW and a cosine LR schedule with warm-up, run through
``accelerate``, with gradient clipping, a stop at a non-finite loss, progress and timing.
What one step computes, and how its batches are drawn, is the caller's.

One loop for both, so that a change to the optimizer or the schedule reaches both; the
two trained bit for bit as they did when each wrote its own loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import get_cosine_schedule_with_warmup


class TrainingError(RuntimeError):
    """Training cannot go on (nothing to train on, a non-finite loss); the message says why."""


@dataclass
class TrainResult:
    steps: int
    tokens: int  # non-padding tokens seen, prompt included
    seconds: float
    loss: float  # mean loss of the last 10% of steps
    peak_rss_mb: float | None = None  # the process's peak memory while training (memory.py)
    mixed_precision: str = "no"  # what the products ran in: "bf16" (autocast) or "no"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


StepProgress = Callable[[int, float], None]  # (step, loss)
# (the model as accelerate prepared it, a batch) -> (the batch's loss, its tokens), after
# the backward pass; both as the whole run sees them (already reduced over processes)
StepLoss = Callable[[Any, Any], tuple[torch.Tensor, torch.Tensor | int]]


@dataclass
class Trained:
    result: TrainResult
    model: Any  # as accelerate prepared it: unwrap it, or gather its state, to save it
    optimizer: torch.optim.Optimizer  # the unwrapped one, whose state a continued run saves


def train(
    accelerator,
    model,
    batches: Iterator,
    step_loss: StepLoss,
    steps: int,
    *,
    lr: float,
    weight_decay: float = 0.0,
    warmup_ratio: float = 0.05,
    max_grad_norm: float = 1.0,
    schedule: tuple[int, int] | None = None,
    optimizer_state: Path | None = None,
    progress: StepProgress | None = None,
    what: str = "loss",
    remedy: str = "lower train.lr?",
) -> Trained:
    """Train the parameters of ``model`` that require gradients for ``steps`` batches of
    ``batches``; ``step_loss`` runs the forward and backward pass of one.

    ``schedule=(start, total)`` runs steps ``start+1..start+steps`` of a schedule of
    ``total`` (one optimizer and LR schedule across calls, Online RFT), with the optimizer
    state saved at ``optimizer_state`` (``save_optimizer_state``) restored first; none: one
    schedule of ``steps``. A non-finite loss raises ``TrainingError`` naming ``what`` and
    ``remedy``."""
    start, total = schedule or (0, steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    if optimizer_state is not None:
        load_optimizer_state(optimizer, model, optimizer_state)
    for group in optimizer.param_groups:
        group["initial_lr"] = lr  # lets the schedule start at ``start``
    lr_schedule = get_cosine_schedule_with_warmup(
        optimizer, math.ceil(warmup_ratio * total), total, last_epoch=start - 1
    )
    raw_optimizer = optimizer
    model, optimizer = accelerator.prepare(model, optimizer)
    losses, tokens = [], 0
    began = time.perf_counter()
    for step in range(1, steps + 1):
        loss, seen = step_loss(model, next(batches))
        if not torch.isfinite(loss):
            raise TrainingError(f"{what} is {loss.item()} at step {step}; {remedy}")
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        lr_schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss))
        tokens += int(seen)
        if progress:
            progress(step, losses[-1])
    seconds = time.perf_counter() - began
    tail = losses[-max(1, steps // 10) :]
    return Trained(TrainResult(steps, tokens, seconds, sum(tail) / len(tail)), model, raw_optimizer)


OPTIMIZER_FILE = "optimizer.safetensors"


def save_optimizer_state(optimizer, model, path: Path) -> None:
    """AdamW's moments and step per parameter, keyed by parameter name, as safetensors:
    no pickle, so a checkpoint from elsewhere cannot run code when resumed."""
    names = {id(p): name for name, p in model.named_parameters()}
    tensors = {}
    for param, state in optimizer.state.items():
        for key, value in state.items():
            tensors[f"{names[id(param)]}::{key}"] = torch.as_tensor(value).contiguous()
    save_file(tensors, str(path))


def load_optimizer_state(optimizer, model, path: Path) -> None:
    if not path.exists():
        raise TrainingError(
            f"{path}: no optimizer state to continue from (train.continuous needs the "
            "previous iteration's checkpoint to have been trained with it on)"
        )
    tensors = load_file(str(path))
    for name, param in model.named_parameters():
        state = {
            key.split("::", 1)[1]: value
            for key, value in tensors.items()
            if key.split("::", 1)[0] == name
        }
        if state:
            optimizer.state[param] = state
