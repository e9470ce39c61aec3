"""Where selftaught keeps what it builds once and reuses: the built-in base models M
(``base/``) and real models converted from GGUF files (``models/``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SELFTAUGHT_CACHE``, else ``~/.cache/selftaught``."""
    return Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))
