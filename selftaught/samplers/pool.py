"""Which sampler a phase gets: a new HF sampler per phase (loading the tiny model takes
milliseconds), while a vLLM engine or a Ray cluster, which take seconds to minutes to
start, is started once and pointed at each new checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selftaught.config import RunConfig
from selftaught.samplers.base import EngineSampler, Sampler
from selftaught.samplers.factory import make_sampler


@dataclass
class SamplerPool:
    """The samplers of one run (``get``), and the engine it keeps (``close``)."""

    config: RunConfig
    stop: tuple[str, ...] = ()  # the task's: every sampler of the run ends rows there
    _engine: EngineSampler | None = None  # a vllm or ray sampler, kept across phases
    _engine_model: Path | None = None

    def get(self, model: Path, batch_size: int | None = None) -> Sampler:
        sampling, m = self.config.sampling, self.config.model
        if sampling.backend == "hf" or self._engine is None:
            sampler = make_sampler(
                sampling,
                model,
                batch_size=batch_size,
                dtype=m.dtype,
                chat_template=m.chat_template,
                stop=self.stop,
                lora_rank=m.lora.r if m.lora else None,
            )
            if sampling.backend != "hf":
                self._engine, self._engine_model = sampler, model
            return sampler
        if self._engine_model != model:
            self._engine.reload(model)
            self._engine_model = model
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
