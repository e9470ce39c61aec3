"""The run's settings as pydantic models: every section but ``task:`` (``tasks.py``), and
``RunConfig``, the whole run."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from selftaught import bstar
from selftaught.config.base import SEED_MAX, Count, _ordered, _Strict, bounded_schedule
from selftaught.config.tasks import AdditionTaskConfig, TaskConfig

# train.mixed_precision's values; models/precision.py resolves "auto"
MixedPrecision = Literal["no", "bf16", "auto"]


class LoraConfig(_Strict):
    r: Count = Field(16, ge=1, le=4096)
    alpha: Count = Field(32, ge=1, le=65536)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = Field("all-linear")
    quantize: Literal["none", "4bit", "8bit"] = Field(
        "none",
        description="QLoRA: the frozen base held in 4-bit NF4 (or 8-bit) by bitsandbytes "
        "while the adapter trains; sampling merges the adapter into the full-precision base",
    )


class ModelConfig(_Strict):
    name_or_path: str = Field(
        "builtin",
        description="'builtin': the tiny model (`selftaught base`); a checkpoint directory, a "
        "hub name, or a short name of a model a package ships ('smollm2-135m-instruct')",
    )
    gguf_file: str | None = Field(
        None,
        description="a GGUF file, converted once into a checkpoint in the cache and started "
        "from; name_or_path then follows it",
    )
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    chat_template: bool = Field(
        True, description="wrap prompts in the model's chat template, where it has one"
    )
    lora: LoraConfig | None = Field(
        None, description="train a LoRA adapter (PEFT) instead of every weight"
    )

    @model_validator(mode="after")
    def _gguf_names_the_model(self) -> ModelConfig:
        """One model per config: a GGUF file is the model, so name_or_path is left at
        'builtin' (and set to the file here) or names the same file."""
        if self.gguf_file is None:
            return self
        if self.name_or_path == "builtin":
            self.name_or_path = self.gguf_file
        elif self.name_or_path != self.gguf_file:
            raise ValueError(
                f"gguf_file {self.gguf_file!r} and name_or_path {self.name_or_path!r} name two "
                "models: leave name_or_path out"
            )
        return self


class BaseTrainingConfig(_Strict):
    """The built-in base model M: its architecture, and how it is made (the analogue of
    STaR's few-shot prompt). A real model (``model.name_or_path``) has no ``base``."""

    ARCHITECTURE: ClassVar = ("hidden_size", "layers", "heads")  # the keys that shape M
    hidden_size: Count = Field(128, ge=8, le=8192)
    layers: Count = Field(4, ge=1, le=256)
    heads: Count = Field(4, ge=1, le=256)
    examples: Count = Field(64000, ge=1, le=10**7, description="worked seed examples")
    max_size: Count = Field(
        3,
        ge=1,
        le=1000,
        description="seed examples span the task's sizes up to this one "
        "(digits for addition, terms for expression)",
    )
    long_fraction: float = Field(
        0.01,
        ge=0,
        le=1,
        description="share of seed examples larger than max_size (up to the task's largest): "
        "a few, so M is poor but not hopeless on them, as a few-shot prompt leaves a model",
    )
    hinted_fraction: float = Field(0.25, ge=0, le=1, description="share shown with the hint")
    steps: Count = Field(2000, ge=1, le=10**7)
    batch_size: Count = Field(32, ge=1, le=65536)
    lr: float = Field(1e-3, gt=0)


class SamplingConfig(_Strict):
    temperature: float = Field(0.0, ge=0, le=5, description="0 is greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    num_samples: Count = Field(1, ge=1, le=4096, description="samples per problem (K)")
    queries_per_round: Count | None = Field(
        None,
        ge=1,
        le=10**7,
        description="problems sampled each iteration, taken in turn from the shuffled "
        "training set (Online RFT, B-STaR); none: every training problem every iteration",
    )
    max_new_tokens: Count = Field(
        400, ge=1, le=131072, description="and within the model's context"
    )
    batch_size: Count = Field(256, ge=1, le=65536)
    backend: Literal["hf", "vllm", "ray"] = Field(
        "hf", description="hf: transformers generate; vllm: the vLLM engine; ray: fan out"
    )
    ray_address: str | None = Field(None, description="ray: cluster address; none: local")
    ray_workers: Count = Field(2, ge=1, le=4096, description="ray: sampling workers")
    ray_backend: Literal["hf", "vllm"] = Field("hf", description="ray: each worker's sampler")
    vllm_gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    vllm_tensor_parallel_size: Count = Field(1, ge=1, le=1024)


class SelectionConfig(_Strict):
    """Which samples become training data (selection.py)."""

    require_correct: bool = Field(True, description="keep only samples with the right answer")
    threshold: float | None = Field(
        None,
        ge=-5,
        le=5,
        description="keep only samples whose reward is above this; the reward is "
        "min(step scores)/5 + 1[correct] with a reward model, else 1[correct]",
    )
    max_per_problem: Count | None = Field(None, ge=1, le=10**5, description="none: no cap")
    dedupe: bool = Field(True, description="one copy of each (problem, completion)")
    valid_steps: bool = Field(
        False,
        description="an oracle process filter: drop samples with a step the task's own step "
        "labels reject, before any other selection (B-STaR's search too); it measures what "
        "perfect exploitation would give. Data tasks have no per-step gold: there it is the "
        "answer check",
    )
    min_steps: Count = Field(
        0,
        ge=0,
        le=10**4,
        description="drop samples with fewer steps than this (the task's steps: lines, "
        "sentences, scratchpad lines), before any other selection (B-STaR's search too): "
        "a small model given the answer as a hint often writes only the answer, which "
        "STaR's filter accepts; 0: keep them",
    )


class RewardConfig(_Strict):
    """The verifier: trained once on M's own labelled samples, before iteration 1."""

    enabled: bool = Field(False, description="score samples with a reward model ('w/ RM')")
    kind: Literal["outcome", "process"] = Field(
        "process", description="one label per sample, or one per reasoning step"
    )
    problems: Count | None = Field(
        None, ge=1, le=10**7, description="training problems to sample for it; none: all"
    )
    num_samples: Count = Field(4, ge=1, le=4096, description="samples per problem to label")
    temperature: float = Field(1.0, gt=0, le=5)
    steps: Count = Field(300, ge=1, le=10**7)
    batch_size: Count = Field(32, ge=1, le=65536)
    lr: float = Field(5e-4, gt=0)


class BStarConfig(_Strict):
    """B-STaR's per-round search for the temperature and reward threshold (bstar.py).

    The defaults are the official code's choices; docs/bstar.md sets each key beside the
    paper and the official code."""

    enabled: bool = Field(False, description="choose temperature and threshold every round")
    adjust: Literal["both", "temperature", "threshold"] = Field(
        "both",
        description="what each round re-chooses (the paper's Table 3): temperature only keeps "
        "selection.threshold; threshold only samples at sampling.temperature, with no search",
    )
    n_star: Count = Field(
        bstar.N_STAR, ge=1, le=4096, description="correct responses per query that count as enough"
    )
    queries: Count = Field(64, ge=1, le=10**7, description="problems in each round's search subset")
    num_samples: Count | None = Field(
        None, ge=1, le=4096, description="samples per problem and temperature; none: sampling's"
    )
    temperatures: list[float] = Field(
        list(bstar.TEMPERATURES),
        min_length=1,
        description="the grid to try: the official 0.50..1.20 in steps of 0.05 (its file names "
        "leave only 0.55, 0.65, ..., 1.15 reachable: list those to reproduce that)",
    )
    reference: bool = Field(
        True,
        description="count each query's reference solution as a correct candidate scored 1.0 "
        "in the balance score, as the official code does; it is never trained on. It is the "
        "task's worked solution, else (data tasks) the gold answer; code tasks need APPS's "
        "'solutions'",
    )
    drop_unparseable: bool = Field(
        True,
        description="responses with no answer to extract are no candidates, neither scored nor "
        "trained on (official: no '# Answer' marker); false: they count as wrong ones",
    )
    threshold_min: float = Field(-1.0, ge=-5, le=5)
    threshold_max: float = Field(
        bstar.THRESHOLD_MAX,
        ge=-5,
        le=5,
        description="0.99, the official loop's last value; 1.0 drops the reference, and with "
        "it every unsolved query from the mean",
    )
    threshold_step: float = Field(0.01, ge=1e-4)  # a grid under 100,001 points
    threshold_from: Literal["round", "search"] = Field(
        "round",
        description="round: swept again on the round's samples (official code); search: the "
        "search subset's tau (the paper)",
    )
    empty_queries: Literal["skip", "zero"] = Field(
        "skip",
        description="a query that keeps nothing: left out of the mean (official), or scored 0",
    )
    search_target: Count | None = Field(
        3550,
        ge=1,
        le=10**9,
        description="the search keeps per query the best m candidates above tau, m the smallest "
        "of 1..64 whose total reaches this (official --valid_sample_size); none: no cap",
    )
    train_target: Count | None = Field(
        67500,
        ge=1,
        le=10**9,
        description="the same cap on the round's sweep and training set (official "
        "MATH_TARGET_SIZE); none: no cap",
    )

    @model_validator(mode="after")
    def _grids(self) -> BStarConfig:
        if any(t <= 0 or t > 5 for t in self.temperatures):
            raise ValueError(f"temperatures must be in (0, 5], got {self.temperatures}")
        _ordered(self, "threshold_min", "threshold_max")
        if self.threshold_from == "search" and self.adjust != "both":
            raise ValueError(
                f"threshold_from: search needs adjust: both (with adjust: {self.adjust} the "
                "search chooses no threshold)"
            )
        return self


class TrainConfig(_Strict):
    init: Literal["base", "previous"] = Field(
        "base", description="STaR and ReST-EM restart from M; Iterative RFT continues"
    )
    continuous: bool = Field(
        False,
        description="one optimizer and LR schedule across all iterations (Online RFT, "
        "B-STaR); needs init: previous",
    )
    steps: Count = Field(300, ge=1, le=10**7, description="steps of the first iteration")
    steps_increment: Count = Field(20, ge=0, le=10**7, description="steps added each iteration")
    steps_growth: float = Field(0.0, ge=0, le=10, description="growth each iteration (0.2=+20%)")
    batch_size: Count = Field(32, ge=1, le=65536)
    micro_batches: Count = Field(
        4,
        ge=1,
        le=65536,
        description="each batch is cut by length into this many forward/backward passes: "
        "the same gradient, less padding",
    )
    lr: float = Field(
        2e-4,
        gt=0,
        description="well below the built-in M's pretraining rate (base.lr, 1e-3), "
        "which erased M's partial skills when it fine-tuned (benchmarks/README.md)",
    )
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    gradient_checkpointing: bool = Field(
        False,
        description="keep each layer's input only and recompute the rest in the backward "
        "pass: activation memory of about one layer, not all, for about a third more compute",
    )
    mixed_precision: MixedPrecision = Field(
        "no",
        description="bf16: the forward pass's matrix products in bfloat16 under "
        "torch.autocast (weights, optimizer and loss stay float32), as accelerate's "
        "mixed_precision; auto: bf16 where the device multiplies bfloat16 in hardware (a "
        "CPU with AVX512-BF16 or AMX, a GPU that supports it), else no. On a CPU, with "
        "attn_implementation: eager (sdpa's bf16 backward is slow there): 1.22x the "
        "built-in model's float32 tokens/s, and with padding_free 1.98x SmolLM2-135M's "
        "LoRA phase's (benchmarks/speed, benchmarks/real_model)",
    )
    padding_free: bool = Field(
        False,
        description="each micro-batch as one row, its sequences end to end (TRL's "
        "padding_free), attended sequence by sequence where attention is sdpa or eager "
        "(models/packed_attention.py): no padding in the products; the same loss",
    )
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2", "flex_attention"] | None = (
        Field(
            None,
            description="transformers' attention for the train phase (from_pretrained's "
            "attn_implementation; unset: its default, sdpa where the model has it): eager's plain "
            "products ran SmolLM2-135M's bf16 LoRA phase faster than sdpa's flash-attention "
            "kernel on a CPU (benchmarks/real_model)",
        )
    )
    torch_compile: bool = Field(
        False,
        description="each decoder layer compiled by torch.compile (dynamic shapes) for the "
        "train phase, as transformers' TrainingArguments.torch_compile: on a 2-core CPU the "
        "built-in model's bf16 step with eager attention ran 1.23x, after 27 s of compiling "
        "in each new process that later phases reuse, and trained to the same loss in every "
        "run (benchmarks/speed/results-compiled-main.md); needs a C++ compiler on a CPU",
    )
    torch_compile_backend: str | None = Field(
        None, description="torch.compile's backend (torch._dynamo.list_backends(); unset: inductor)"
    )
    max_grad_norm: float = Field(1.0, gt=0)
    num_processes: Count = Field(
        1,
        ge=1,
        le=4096,
        description="more than 1: each training phase runs under `accelerate launch`",
    )
    accelerate_config: str | None = Field(
        None, description="an accelerate config file (DDP, DeepSpeed, FSDP); set: launched"
    )

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _unquoted_no(cls, value: Any) -> Any:
        """YAML 1.1 reads an unquoted ``no`` (in a file or ``--set``) as false."""
        return "no" if value is False else value

    @model_validator(mode="after")
    def _continuous(self) -> TrainConfig:
        if self.continuous and self.init != "previous":
            raise ValueError("continuous: true needs init: previous (one run, never restarted)")
        return self


class LogConfig(_Strict):
    tensorboard: bool = Field(True, description="event files in RUN/tensorboard")
    wandb: bool = Field(False, description="Weights & Biases")
    wandb_project: str = "selftaught"
    wandb_mode: Literal["online", "offline"] = Field(
        "offline", description="offline works without network; `wandb sync` uploads later"
    )


class EvalConfig(_Strict):
    batch_size: Count = Field(256, ge=1, le=65536)
    num_samples: Count = Field(
        0, ge=0, le=4096, description="samples per held-out problem for pass@k; 0: greedy only"
    )
    temperature: float = Field(1.0, gt=0, le=5, description="for the pass@k samples")
    pass_k: list[Count] | None = Field(
        None, description="k of pass@k; none: 1 and each power of two up to num_samples"
    )
    pass_k_s: list[tuple[Count, Count]] | None = Field(
        None,
        description="(k, s) pairs of pass@k-s, at least s of k correct; "
        "none: (num_samples, num_samples/8) as B-STaR's Pass@32-4",
    )

    @model_validator(mode="after")
    def _ks(self) -> EvalConfig:
        for k in [*self.ks(), *(k for k, _ in self.k_s_pairs())]:
            if not 1 <= k <= self.num_samples:
                raise ValueError(f"k={k} needs 1 <= k <= num_samples ({self.num_samples})")
        for k, s in self.k_s_pairs():
            if not 1 <= s <= k:
                raise ValueError(f"pass_k_s ({k}, {s}) needs 1 <= s <= k")
        return self

    def ks(self) -> list[int]:
        if self.pass_k is not None:
            return self.pass_k
        return [2**i for i in range(self.num_samples.bit_length()) if 2**i <= self.num_samples]

    def k_s_pairs(self) -> list[tuple[int, int]]:
        if self.pass_k_s is not None:
            return self.pass_k_s
        return [(self.num_samples, max(1, self.num_samples // 8))] if self.num_samples else []


Method = Literal[
    "star",
    "star-norat",
    "rest-em",
    "iterative-rft",
    "online-rft",
    "bstar",
    "bstar-temperature",
    "bstar-threshold",
]
METHODS: tuple[str, ...] = get_args(Method)


class RunConfig(_Strict):
    method: Method = "star"
    iterations: Count = Field(4, ge=1, le=1000)
    seed: Count = Field(0, ge=0, le=SEED_MAX)
    rationalization: bool = True
    task: TaskConfig = AdditionTaskConfig()
    model: ModelConfig = ModelConfig()
    base: BaseTrainingConfig | None = Field(BaseTrainingConfig(), validate_default=True)
    sampling: SamplingConfig = SamplingConfig()
    selection: SelectionConfig = SelectionConfig()
    reward: RewardConfig = RewardConfig()
    bstar: BStarConfig = BStarConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    log: LogConfig = LogConfig()
    quiet: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_task_name(cls, data: Any) -> Any:
        """``task.name`` may be left out: the addition task, as in the default config."""
        if isinstance(data, dict) and isinstance(data.get("task"), dict):
            data = {**data, "task": {"name": "addition", **data["task"]}}
        return data

    @field_validator("base", mode="before")
    @classmethod
    def _builtin_only(cls, base: Any, info: ValidationInfo) -> Any:
        """A real model has no ``base``: a file's recipe for M is dropped, but M's
        architecture is refused, naming the key: it may be meant for the real model."""
        model = info.data.get("model")
        if model is None or model.name_or_path == "builtin":
            return {} if base is None else base  # `base:` with nothing under it
        keys = [k for k in BaseTrainingConfig.ARCHITECTURE if isinstance(base, dict) and k in base]
        if keys:
            raise PydanticCustomError(
                "builtin_only",
                f"the built-in model's architecture, but model.name_or_path is "
                f"{model.name_or_path!r}, a model with its own: remove it",
                {"config_key": ", ".join(f"base.{k}" for k in keys)},
            )
        return None

    @model_validator(mode="after")
    def _bounded_schedule(self) -> RunConfig:
        bounded_schedule(self.train, self.iterations)
        return self

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        sizes = self.task.sizes
        if self.base is not None and not sizes[0] <= self.base.max_size <= sizes[-1]:
            raise ValueError(
                f"base.max_size ({self.base.max_size}) must lie within the task's sizes "
                f"({sizes[0]}..{sizes[-1]})"
            )
        b = self.bstar
        if b.enabled and b.adjust == "temperature" and self.selection.threshold is None:
            raise PydanticCustomError(
                "fixed_threshold",
                "bstar.adjust: temperature keeps the threshold fixed at this key: set it",
                {"config_key": "selection.threshold"},
            )
        return self
