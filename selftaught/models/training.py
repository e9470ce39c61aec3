"""Fine-tuning a policy: ``HFTrainer.fit``.

The loss covers the completion only (prompt tokens are labelled -100), batches are
shuffled across lengths, and training runs through
``accelerate`` so the same code serves one CPU or a DeepSpeed/FSDP launch (the loop
itself, shared with the reward model, is ``train_loop.train``).

A mixed-length batch is mostly padding when its rows are padded to the longest, so each
batch is cut by length into a few micro-batches whose losses are summed over the whole
batch's completion tokens: the gradient of one padded batch, at a fraction of the work
(``benchmarks/speed``).

A real model's vocabulary makes the logits the largest tensors of a step (49,152 floats per
position for SmolLM2, against 576 for its hidden state), and only completion positions
carry a loss, so for a large vocabulary only those positions' logits are computed
(``completion_loss``).

``padding_free`` puts each micro-batch's sequences end to end in one row, positions
restarting at 0 for each (TRL's ``padding_free``), so no position is padding; the row is
attended sequence by sequence (``packed_attention.py``) rather than as one long sequence
masked between its parts.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import DistributedType

from selftaught.config import LoraConfig, MixedPrecision, RunConfig
from selftaught.memory import peak_rss_mb, reset_peak_rss
from selftaught.models.loading import (
    adapter_base,
    is_adapter,
    load_model,
    load_tokenizer,
    render_prompt,
    unwrap_peft,
)
from selftaught.models.packed_attention import use_packed_attention
from selftaught.models.precision import native_bf16, resolve_mixed_precision
from selftaught.models.train_loop import (
    OPTIMIZER_FILE,
    StepProgress,
    TrainingError,
    TrainResult,
    save_optimizer_state,
    train,
)
from selftaught.tasks.base import Example

IGNORE = -100
# from this vocabulary size on, logits are computed at completion positions only; below it
# they are a small tensor, and the model's own loss keeps the built-in M's training (and so
# the shipped M, rebuilt bit for bit) exactly as it was
SPARSE_LOGITS_VOCAB = 4096


@dataclass(kw_only=True)
class HFTrainer:
    batch_size: int = 32
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str = "float32"
    chat_template: bool = False
    lora: LoraConfig | None = None
    micro_batches: int = 4
    gradient_checkpointing: bool = False
    mixed_precision: MixedPrecision = "no"
    padding_free: bool = False
    attn_implementation: str | None = None
    torch_compile: bool = False
    torch_compile_backend: str | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> HFTrainer:
        """The trainer of a run's iterations: ``train.*`` and the model's settings."""
        t, m = config.train, config.model
        return cls(
            batch_size=t.batch_size,
            lr=t.lr,
            warmup_ratio=t.warmup_ratio,
            weight_decay=t.weight_decay,
            max_grad_norm=t.max_grad_norm,
            dtype=m.dtype,
            chat_template=m.chat_template,
            lora=m.lora,
            micro_batches=t.micro_batches,
            gradient_checkpointing=t.gradient_checkpointing,
            mixed_precision=t.mixed_precision,
            padding_free=t.padding_free,
            attn_implementation=t.attn_implementation,
            torch_compile=t.torch_compile,
            torch_compile_backend=t.torch_compile_backend,
        )

    def fit(
        self,
        init_path: Path,
        examples: list[Example],
        steps: int,
        out_dir: Path,
        seed: int,
        progress: StepProgress | None = None,
        schedule: tuple[int, int] | None = None,
    ) -> TrainResult:
        """Train from the checkpoint at ``init_path``; save the result at ``out_dir``.

        ``schedule=(start, total)`` continues one optimizer and LR schedule across calls
        (Online RFT): the optimizer state saved beside ``init_path`` is restored, the
        schedule resumes at step ``start`` of ``total``, and the state is saved again."""
        if not examples:
            raise TrainingError("no training examples: nothing was kept this iteration")
        reset_peak_rss()
        torch.manual_seed(seed)
        accelerator = Accelerator()
        tokenizer = load_tokenizer(init_path)
        model = load_trainable(init_path, self.dtype, self.lora, self.attn_implementation)
        if self.padding_free:
            use_packed_attention(model)
        if self.gradient_checkpointing:
            enable_checkpointing(model)
        if self.torch_compile:
            compile_layers(model, self.torch_compile_backend)
        model.train()
        sparse = model.get_output_embeddings().weight.shape[0] >= SPARSE_LOGITS_VOCAB
        encoded = [encode(tokenizer, ex, self.chat_template) for ex in examples]
        start = schedule[0] if schedule else 0
        precision = resolve_mixed_precision(self.mixed_precision, native_bf16(accelerator.device))
        rank, world = accelerator.process_index, accelerator.num_processes
        # every process draws the same global batch and trains on its own share of it,
        # so N processes see the data one process would (gradients are averaged)
        shares = (
            batch[rank::world] or [encoded[0]]
            for batch in shuffled_batches(encoded, self.batch_size, random.Random(seed))
        )
        # DeepSpeed's engine steps the optimizer at every backward, so it gets whole batches
        parts = (
            1 if accelerator.distributed_type == DistributedType.DEEPSPEED else self.micro_batches
        )

        def step_loss(prepared, share):
            loss, tokens = self._accumulate(
                accelerator, prepared, share, tokenizer, parts, sparse, precision
            )
            return accelerator.reduce(loss, "mean"), accelerator.reduce(tokens, "sum")

        trained = train(
            accelerator,
            model,
            shares,
            step_loss,
            steps,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio,
            max_grad_norm=self.max_grad_norm,
            schedule=schedule,
            optimizer_state=Path(init_path) / OPTIMIZER_FILE if start else None,
            progress=progress,
        )
        model = trained.model
        state = None
        if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
            state = accelerator.get_state_dict(model)  # gathers the shards
        if accelerator.is_main_process:
            save_checkpoint(
                accelerator.unwrap_model(model),
                tokenizer,
                out_dir,
                trained.optimizer if schedule else None,
                state,
            )
        accelerator.wait_for_everyone()
        trained.result.peak_rss_mb = peak_rss_mb()
        trained.result.mixed_precision = precision
        return trained.result

    def _accumulate(
        self, accelerator, model, share, tokenizer, parts: int, sparse=False, precision="no"
    ):
        """Forward and backward over ``share`` in length-sorted micro-batches; returns the
        share's mean completion-token loss (detached) and its count of real tokens."""
        groups = micro_batches(share, parts)
        # one group: the model's own mean loss, bit for bit the computation of one padded
        # batch (a sum over a separate count rounds differently), so M is rebuilt exactly
        targets = None
        if len(groups) > 1:
            targets = torch.tensor(completion_tokens(share), device=accelerator.device)
        loss = torch.zeros((), device=accelerator.device)
        tokens = torch.zeros((), dtype=torch.long, device=accelerator.device)
        for i, group in enumerate(groups):
            inputs, labels = model_inputs(
                group, tokenizer.pad_token_id, self.padding_free, accelerator.device
            )
            # gradients are all-reduced once, after the last micro-batch
            last = i == len(groups) - 1
            with contextlib.nullcontext() if last else accelerator.no_sync(model):
                with autocast(precision, accelerator.device):
                    if sparse:
                        part = completion_loss(model, inputs, labels, targets)
                    else:
                        part = model(**inputs, labels=labels, num_items_in_batch=targets).loss
                accelerator.backward(part)  # outside autocast, as torch recommends
            loss += part.detach()
            tokens += sum(len(ids) for ids, _ in group)
        return loss, tokens


def autocast(precision: str, device: torch.device):
    """Our own autocast rather than accelerate's ``mixed_precision``: accelerate's is fixed
    once per process (its state is shared), and a run's phases, the benchmarks and the
    tests train in one process. ``precision``: ``resolve_mixed_precision``'s."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def completion_loss(model, inputs: dict, labels, num_items=None) -> torch.Tensor:
    """The causal LM loss of the model's own ``labels=`` path (mean over labelled tokens,
    or their sum over ``num_items``), computing logits only at the positions that predict
    a labelled token in some row: the prompt's logits, most of the full tensor when
    prompts are long, are never made. ``inputs``: ``model_inputs``'s."""
    shifted = labels[:, 1:]
    keep = (shifted != IGNORE).any(dim=0).nonzero().squeeze(1)
    logits = model(**inputs, logits_to_keep=keep).logits
    targets = shifted[:, keep]
    total = F.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    count = num_items if num_items is not None else (targets != IGNORE).sum()
    return total / count


def micro_batches(batch: list, parts: int) -> list[list]:
    """``batch`` sorted by length and cut into at most ``parts`` near-equal groups, so each
    group pads only to its own longest row; one part is the batch as it is (reordering
    its rows alone would change the rounding of the gradient)."""
    if parts <= 1:
        return [batch]
    ordered = sorted(batch, key=lambda pair: len(pair[0]))
    size = math.ceil(len(ordered) / parts)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def completion_tokens(batch) -> int:
    """The tokens a causal LM's loss averages over: labelled ones, after the shift by one."""
    return sum(1 for _, labels in batch for label in labels[1:] if label != IGNORE)


def load_trainable(init_path, dtype: str, lora: LoraConfig | None, attention: str | None = None):
    """The model to train, its attention ``attention`` (transformers' attn_implementation).
    With LoRA: a fresh adapter on a full model ("restart from M" means exactly this), or
    the previous iteration's adapter, trainable again."""
    if lora is None:
        if is_adapter(init_path):
            raise TrainingError(f"{init_path} is a LoRA adapter, but model.lora is not set")
        return load_model(init_path, dtype, attention=attention)
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    def base_model(path):
        model = load_model(path, dtype, lora.quantize, attention)
        if lora.quantize != "none":  # norms in float32, inputs that carry gradients
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return model

    if is_adapter(init_path):
        base = base_model(adapter_base(init_path))
        return PeftModel.from_pretrained(base, str(init_path), is_trainable=True)
    settings = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base_model(init_path), settings)


def enable_checkpointing(model) -> None:
    """Activations recomputed layer by layer in the backward pass. Non-reentrant, so no
    input needs ``requires_grad`` (a LoRA model's frozen embeddings need no hook)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.20's name
        model.activation_checkpointing_enable(kwargs)
    else:
        model.gradient_checkpointing_enable(kwargs)


# torch.compile's own default, for train.torch_compile_backend unset
DEFAULT_COMPILE_BACKEND = "inductor"


def compile_layers(model, backend: str | None = None) -> None:
    """Each decoder layer compiled in place (``nn.Module.compile``: the state dict keeps its
    keys), dynamic shapes as each batch has its own length. The layers share one graph, so
    compiling costs what one layer does: on a 2-core CPU the built-in model's bf16 step
    1.23x after 27 s in a new process, its loss the same in every fit; its whole forward
    compiled was 1.11x after 55 s, its loss differing from fit to fit
    (benchmarks/speed/results-compiled-main.md). The decoder layers are the modules of
    the classes transformers names in ``_no_split_modules``; a model without them is
    compiled whole. A PEFT model's adapters live in its base model's layers."""
    base = unwrap_peft(model)
    names = set(getattr(base, "_no_split_modules", None) or ())
    layers = [m for m in base.modules() if type(m).__name__ in names] or [base]
    for layer in layers:
        layer.compile(dynamic=True, backend=backend or DEFAULT_COMPILE_BACKEND)


def compile_problem(enabled: bool, backend: str | None) -> str | None:
    """What would keep ``train.torch_compile`` from working here, in words naming the key,
    or None: a backend torch does not have, or inductor on a CPU without a C++ compiler
    (it compiles the C++ it generates; found only when the first step runs otherwise)."""
    if backend is not None:  # listing imports dynamo: ~1.5 s that most runs need not pay
        backends = torch._dynamo.list_backends(exclude_tags=())
        if backend not in backends:
            return (
                f"train.torch_compile_backend: {backend!r} is not one of torch.compile's "
                f"backends; expected one of {', '.join(backends)}"
            )
    inductor = (backend or DEFAULT_COMPILE_BACKEND) == "inductor"
    if not enabled or not inductor or torch.cuda.is_available():
        return None
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # inductor's internals moved: leave the finding to the first step
        return None
    try:
        get_cpp_compiler()
    except Exception:  # torch._inductor.exc.InvalidCxxCompiler
        return (
            "train.torch_compile: inductor compiles C++ for a CPU, and no C++ compiler was "
            "found (g++, or the one $CXX names); install one, or set "
            "train.torch_compile_backend: aot_eager (no code generated: little gain)"
        )
    return None


def encode(tokenizer, example: Example, chat_template: bool = False) -> tuple[list[int], list[int]]:
    text = render_prompt(tokenizer, example.prompt, chat_template)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    completion = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    completion = completion + [tokenizer.eos_token_id]
    return prompt + completion, [IGNORE] * len(prompt) + completion


def shuffled_batches(
    encoded: list[tuple[list[int], list[int]]], batch_size: int, rng: random.Random
) -> Iterator[list[tuple[list[int], list[int]]]]:
    """Endless batches, every example once per epoch in a fresh random order.

    Not grouped by length: on the addition task, length-grouped batches hold one digit
    count each, and the tiny model then learned several times slower per step than with
    mixed batches (in development runs: teacher-forced 1-digit loss 0.24 vs 0.05 after
    500 steps; not a committed benchmark), which more than pays for their padding.
    """
    while True:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        # full batches only (a short last one would weigh its few examples more), unless
        # there are fewer examples than one batch
        for b in range(0, max(len(order) - batch_size + 1, 1), batch_size):
            yield [encoded[i] for i in order[b : b + batch_size]]


def model_inputs(
    batch, pad_id: int, padding_free: bool, device: torch.device | str = "cpu"
) -> tuple[dict, torch.Tensor]:
    """The keyword arguments of a training forward pass over ``batch``, and its labels, on
    ``device``: padded rows and their attention mask, or one packed row and its positions.
    No KV cache: training never reads one, and with one transformers would not read the
    packed row's restarting positions as sequence boundaries."""
    if padding_free:
        input_ids, labels, positions = pack(batch)
        tensors = {"input_ids": input_ids, "position_ids": positions}
    else:
        input_ids, labels, mask = collate(batch, pad_id)
        tensors = {"input_ids": input_ids, "attention_mask": mask}
    inputs = {name: t.to(device) for name, t in tensors.items()}
    return {**inputs, "use_cache": False}, labels.to(device)


def pack(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch`` as one row: the sequences end to end, positions restarting at 0 for each,
    and each sequence's first label ignored, as in a padded row, where the shift leaves it
    nothing to predict (here the sequence before would predict it)."""
    input_ids = [token for ids, _ in batch for token in ids]
    labels = [label for _, labs in batch for label in [IGNORE, *labs[1:]]]
    positions = [p for ids, _ in batch for p in range(len(ids))]
    return tuple(torch.tensor([row], dtype=torch.long) for row in (input_ids, labels, positions))


def collate(batch, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        mask[row, : len(ids)] = 1
    return input_ids, labels, mask


def save_checkpoint(model, tokenizer, out_dir: Path, optimizer=None, state_dict=None) -> None:
    """Write to a sibling temp dir, then rename: a killed save never leaves half a checkpoint.

    A PEFT model saves its adapter only; ``state_dict`` is the gathered one of a sharded
    (FSDP, ZeRO-3) run."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    if optimizer is not None:
        save_optimizer_state(optimizer, model, tmp / OPTIMIZER_FILE)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
