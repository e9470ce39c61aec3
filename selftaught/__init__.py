"""selftaught: a language model teaches itself to reason (STaR, B-STaR and their family)."""

import logging

__version__ = "0.1.0"

# With bitsandbytes installed (QLoRA), importing transformers makes its CPU backend warn
# that it could not download an optional kernel from the Hugging Face hub, in every
# command; selftaught never downloads at run time, and QLoRA works without that kernel.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
