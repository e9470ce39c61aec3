"""A run's config: its schema (``sections.py``, and ``tasks.py`` for the ``task:``
section), what every section shares (``base.py``), and reading it from YAML files and
``--set`` overrides with errors that name the key (``files.py``)."""

from selftaught.config.base import SEED_MAX, ConfigError
from selftaught.config.files import (
    apply_overrides,
    deep_merge,
    default_config_path,
    dump_config,
    load_config,
    parse_override,
    read_yaml,
    resolve,
    set_dotted,
    upgrade_stored,
)
from selftaught.config.sections import (
    METHODS,
    BaseTrainingConfig,
    BStarConfig,
    EvalConfig,
    LogConfig,
    LoraConfig,
    MixedPrecision,
    ModelConfig,
    RewardConfig,
    RunConfig,
    SamplingConfig,
    SelectionConfig,
    TrainConfig,
)
from selftaught.config.tasks import (
    TASK_CONFIGS,
    AdditionTaskConfig,
    DataTaskConfig,
    ExpressionTaskConfig,
    TaskConfig,
)

__all__ = [
    "METHODS",
    "SEED_MAX",
    "TASK_CONFIGS",
    "AdditionTaskConfig",
    "BStarConfig",
    "BaseTrainingConfig",
    "ConfigError",
    "DataTaskConfig",
    "EvalConfig",
    "ExpressionTaskConfig",
    "LogConfig",
    "LoraConfig",
    "MixedPrecision",
    "ModelConfig",
    "RewardConfig",
    "RunConfig",
    "SamplingConfig",
    "SelectionConfig",
    "TaskConfig",
    "TrainConfig",
    "apply_overrides",
    "deep_merge",
    "default_config_path",
    "dump_config",
    "load_config",
    "parse_override",
    "read_yaml",
    "resolve",
    "set_dotted",
    "upgrade_stored",
]
