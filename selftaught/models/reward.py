"""The verifier of B-STaR: an outcome or process reward model, ``HFRewardModel.score``.

A reward model is the policy's own architecture with a scalar head: the policy
checkpoint (e.g. the base model M, a ``*ForCausalLM``) is loaded with
``AutoModelForTokenClassification(num_labels=1)``, so the backbone is reused and only a
fresh ``score`` head (one logit per token) is new. A *step*'s score is
``sigmoid(logit)`` at the last token of that step; training is binary cross-entropy
at those positions only, on the policy's own labelled samples (:class:`RewardExample`).

- Outcome RM: one step, the whole completion (``steps=[completion]``), labelled by the
  answer check.
- Process RM: the completion split into steps (e.g. per line, newlines kept, so that
  ``"".join(steps) == completion``), one label per step.

The per-step scores of :meth:`HFRewardModel.score` feed :func:`selftaught.bstar.reward_score`
(``min(step scores) / 5 + 1[correct]``, the official B-STaR score); that combination is
not repeated here.

Tokenization: prompt and completion are tokenized as one text, without special tokens
(as :func:`selftaught.models.training.encode` trains the policy), and each step's end is
found through the fast tokenizer's offset mapping, not by assuming one token per character,
so a BPE model works the same as the built-in char-level one. Sequences are padded on the
right here, whatever the tokenizer's ``padding_side``: with a causal model the real tokens
then keep positions ``0..n-1`` and never see the padding, so a sample scores the same alone
or in any batch. Inputs longer than the model's context (``max_position_embeddings``)
are refused with a ``ValueError``: truncating would cut step labels or the prompt silently.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import AutoModelForTokenClassification

from selftaught.models.loading import load_tokenizer
from selftaught.models.train_loop import StepProgress, TrainingError, TrainResult, train
from selftaught.models.training import save_checkpoint, shuffled_batches


@dataclass(frozen=True)
class RewardExample:
    prompt: str
    steps: list[str]  # "".join(steps) is the completion; an outcome RM has steps=[completion]
    labels: list[bool]  # one per step: is this step good?


# -- loading ----------------------------------------------------------------------------


def _drop_load_report(record: logging.LogRecord) -> bool:
    # a filter, not a raised log level: transformers 5 runs (and logs) extra tensor-parallel
    # plan checks when that logger's level is WARNING or above
    return "LOAD REPORT" not in record.getMessage()


def load_reward_model(path: str | Path):
    """A checkpoint as a per-token scalar scorer: a reward model, or a policy to start one from.

    From a policy checkpoint the ``score`` head is new (and the policy's LM head unused);
    transformers' load report saying so is expected and silenced. Anything else missing
    means the backbone did not load, which would train a random network: that is an error.
    """
    reporter = logging.getLogger("transformers.modeling_utils")
    reporter.addFilter(_drop_load_report)
    try:
        model, info = AutoModelForTokenClassification.from_pretrained(
            str(path),
            num_labels=1,
            use_safetensors=True,  # no pickle: an untrusted checkpoint must not run code
            dtype=torch.float32,
            output_loading_info=True,
        )
    finally:
        reporter.removeFilter(_drop_load_report)
    missing = sorted(k for k in info["missing_keys"] if not k.startswith("score."))
    if missing or info["mismatched_keys"]:
        raise ValueError(
            f"{path}: the backbone did not load into a reward model (missing {missing[:5]}, "
            f"mismatched {sorted(info['mismatched_keys'])[:5]})"
        )
    return model


# -- encoding ---------------------------------------------------------------------------


def step_end_positions(tokenizer, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
    """Token ids of ``prompt + "".join(steps)`` and, per step, the index of its last token.

    A step's last token is the last one that starts before the step's end: the token
    holding the step's last character, or, if a normalizer dropped that character, the
    token before. A token that spans a step boundary (BPE may merge ``"5\\n"`` with what
    follows) is the end of the earlier step; two steps can then share a position. An empty
    step ends where the text before it ends.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("step positions need a fast tokenizer (its offset mapping)")
    text = prompt + "".join(steps)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    starts = [start for start, end in offsets if end > start]  # skip zero-width tokens
    index = [i for i, (start, end) in enumerate(offsets) if end > start]
    positions, end, cursor = [], len(prompt), 0
    for k, step in enumerate(steps):
        end += len(step)
        while cursor < len(starts) and starts[cursor] < end:
            cursor += 1
        if cursor == 0:
            raise ValueError(f"step {k} ends before the first token of {text[:40]!r}")
        positions.append(index[cursor - 1])
    return ids, positions


def _check_length(n_tokens: int, limit: int | None, what: str) -> None:
    if limit is not None and n_tokens > limit:
        raise ValueError(
            f"{what} is {n_tokens} tokens, longer than the model's context of {limit}; "
            "it is not truncated (that would drop step labels or part of the prompt): "
            "shorten the prompt or the completion"
        )


def _context(model) -> int | None:
    return getattr(model.config, "max_position_embeddings", None)


def _collate(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right padding (see the module docstring): ids and attention mask."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, ids in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[r, : len(ids)] = 1
    return input_ids, mask


def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    return pad if pad is not None else (tokenizer.eos_token_id or 0)  # masked out anyway


# -- scoring ----------------------------------------------------------------------------


@dataclass
class HFRewardModel:
    """A trained reward model checkpoint; loads on first use, scores in eval mode."""

    path: Path
    batch_size: int = 64
    _model: object = field(default=None, init=False, repr=False, compare=False)
    _tokenizer: object = field(default=None, init=False, repr=False, compare=False)

    def _load(self):
        if self._model is None:
            self._tokenizer = load_tokenizer(self.path)
            self._model = load_reward_model(self.path).eval()
        return self._model, self._tokenizer

    def score(self, prompts: list[str], steps: list[list[str]]) -> list[list[float]]:
        """Per step, the probability in [0, 1] that the step is good."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        if not prompts:
            return []
        model, tokenizer = self._load()
        device = next(model.parameters()).device
        encoded = [step_end_positions(tokenizer, p, s) for p, s in zip(prompts, steps, strict=True)]
        for i, (ids, _) in enumerate(encoded):
            _check_length(len(ids), _context(model), f"reward input {i}")
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))  # less padding
        scores: list[list[float]] = [[] for _ in prompts]
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                batch = order[b : b + self.batch_size]
                input_ids, mask = _collate([encoded[i][0] for i in batch], _pad_id(tokenizer))
                logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device))
                probs = torch.sigmoid(logits.logits[..., 0].float()).cpu()
                for row, i in enumerate(batch):
                    scores[i] = probs[row, encoded[i][1]].tolist()
        return scores


# -- training ---------------------------------------------------------------------------


def class_weights(labels: Sequence[bool]) -> tuple[float, float]:
    """``(positive, negative)`` loss weights under which each class weighs half the loss.

    Most of a policy's samples may be correct (or, early on, wrong); unweighted, the loss
    is then lowest for a model that calls every step by the majority class, and the
    minority, the very steps a filter must catch, barely trains. Balanced, the scores rank
    the two classes as if they were equally common: their probabilities are calibrated to a
    50/50 prior, not to the base rate. That is fine for B-STaR, which sweeps the threshold
    and uses the scores to rank. With one class only there is nothing to balance: (1, 1).
    """
    n, pos = len(labels), sum(map(bool, labels))
    if pos in (0, n):
        return 1.0, 1.0
    return n / (2 * pos), n / (2 * (n - pos))


def encode_reward_example(
    tokenizer, example: RewardExample
) -> tuple[list[int], list[int], list[bool]]:
    if len(example.steps) != len(example.labels):
        raise ValueError(
            f"{len(example.steps)} steps but {len(example.labels)} labels in a reward "
            f"example for {example.prompt[:40]!r}"
        )
    ids, positions = step_end_positions(tokenizer, example.prompt, example.steps)
    return ids, positions, [bool(label) for label in example.labels]


def train_reward_model(
    init_path: Path,
    examples: list[RewardExample],
    steps: int,
    out_dir: Path,
    seed: int,
    batch_size: int = 32,
    lr: float = 5e-4,
    progress: StepProgress | None = None,
) -> TrainResult:
    """Fine-tune a reward model from ``init_path`` (a policy or a reward model checkpoint)
    on ``examples`` for ``steps`` batches; save it at ``out_dir`` (safetensors, atomically).

    The loss is class-balanced binary cross-entropy at the step-end tokens (see
    :func:`class_weights`); every other position is ignored. Full fine-tune, in the loop
    of ``HFTrainer.fit`` (``train_loop.train``) with its default warm-up and clipping.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not examples:
        raise TrainingError("no reward examples: nothing to train the reward model on")
    if not any(ex.labels for ex in examples):
        raise TrainingError("reward examples without any step labels: nothing to train on")
    torch.manual_seed(seed)  # the new score head's initialisation, dropout
    tokenizer = load_tokenizer(init_path)
    model = load_reward_model(init_path)
    model.train()
    encoded = [encode_reward_example(tokenizer, ex) for ex in examples]
    for i, (ids, _, _) in enumerate(encoded):
        _check_length(len(ids), _context(model), f"reward example {i}")
    w_pos, w_neg = class_weights([label for _, _, labels in encoded for label in labels])
    accelerator = Accelerator()
    pad_id = _pad_id(tokenizer)

    def step_loss(prepared, batch):
        input_ids, mask = _collate([ids for ids, _, _ in batch], pad_id)
        rows = [r for r, (_, pos, _) in enumerate(batch) for _ in pos]
        cols = [p for _, pos, _ in batch for p in pos]
        target = torch.tensor([float(y) for _, _, labels in batch for y in labels])
        weight = torch.where(target > 0.5, w_pos, w_neg)
        input_ids, mask = input_ids.to(accelerator.device), mask.to(accelerator.device)
        logits = prepared(input_ids=input_ids, attention_mask=mask).logits[..., 0]
        picked = logits[
            torch.tensor(rows, device=logits.device), torch.tensor(cols, device=logits.device)
        ]
        if picked.numel() == 0:  # only label-less examples drawn: nothing to learn here
            loss = logits.sum() * 0.0
        else:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                picked.float(), target.to(picked.device), weight=weight.to(picked.device)
            )
        accelerator.backward(loss)
        # every process trains on the whole batch: its loss and tokens are the run's
        return loss.detach(), mask.sum()

    trained = train(
        accelerator,
        model,
        shuffled_batches(encoded, batch_size, random.Random(seed)),
        step_loss,
        steps,
        lr=lr,
        progress=progress,
        what="reward model loss",
        remedy="lower lr?",
    )
    save_checkpoint(accelerator.unwrap_model(trained.model), tokenizer, out_dir)
    return trained.result
