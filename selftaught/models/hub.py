"""The Hugging Face hub as a run sees it: what the local cache holds, whether the hub can
be reached now (said in seconds, where transformers retries for most of a minute), and
the revision a name loads."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

NETWORK_WAIT = 3.0  # seconds to reach the hub: the answer is fast when there is one


def cached_snapshot(name: str) -> Path | None:
    """The directory of ``name``'s cached revision, if the cache holds its config.json."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # a name the hub's own check refuses (odd characters) is not cached
        return None
    return Path(found).parent if isinstance(found, str) else None


def hub_revision(name: str) -> str | None:
    """The commit a hub name loads now: the hub's, when it can be reached, else the
    cached one; None when neither is known."""
    if not offline_reason():
        with contextlib.suppress(Exception):
            return hub_api().model_info(name, timeout=10).sha
    snapshot = cached_snapshot(name)
    return snapshot.name if snapshot is not None else None


def hub_cache() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def offline_reason() -> str | None:
    """Why the hub cannot be reached now, or None: HF_HUB_OFFLINE, or no connection to it
    (or to the proxy) within a few seconds."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = urlparse(proxy or endpoint)
    port = target.port or (443 if target.scheme == "https" else 80)
    if not target.hostname or not _reachable(target.hostname, port):
        via = f" through the proxy {proxy}" if proxy else ""
        return f"{endpoint} cannot be reached{via} (no network?)"
    return None


@functools.lru_cache(maxsize=8)
def _reachable(host: str, port: int) -> bool:
    """A TCP connection within NETWORK_WAIT seconds, name lookup included (a thread, as
    getaddrinfo takes no timeout and can hang on a broken resolver)."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=NETWORK_WAIT).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(NETWORK_WAIT)
    return bool(result and result[0])


def hub_api():
    """The hub at HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
