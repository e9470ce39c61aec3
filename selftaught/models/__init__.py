"""The heavy parts, each behind a small interface: training, the reward model, the built-in
model (sampling is in selftaught.samplers)."""

from transformers.utils import logging as _hf_logging

# transformers' own tqdm bars ("Loading weights", "Writing model shards") would interleave
# with ours on every checkpoint load; its warnings stay visible
_hf_logging.disable_progress_bar()
