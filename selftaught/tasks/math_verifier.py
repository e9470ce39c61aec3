"""math-verify, run in worker processes so that a check works from any thread and never hangs.

Why worker processes: math-verify's timeouts use ``signal.alarm``, which works only in the
main thread of the main interpreter; called from any other thread ``parse`` and ``verify``
raise ``ValueError: signal only works in main thread`` (math-verify >= 0.8 can turn the
timeout off, ``parsing_timeout=None`` / ``timeout_seconds=None``, and then leaves the caller
to stop a runaway sympy call itself). :class:`MathVerifier` runs math-verify in child
processes, on *their* main thread, where its own alarms work, and kills and restarts a
child that misses the per-check deadline. This module imports nothing outside the standard
library; only the children import math-verify (and sympy).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

log = logging.getLogger(__name__)


def math_verify_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("math_verify") is not None


class MathVerifierError(RuntimeError):
    """The worker processes cannot run (math-verify missing, or they crash on start)."""


class MathVerifier:
    """``verify(parse(gold), parse(answer))`` in ``workers`` child processes.

    Each check has a hard deadline of ``timeout`` seconds (math-verify's own alarms, set to
    a third of it, fire first in the child's main thread); a child that misses it is killed
    and restarted, the check scores False and ``timeouts`` counts it. Calls are serialised
    by a lock, so any thread may call; :meth:`check_many` spreads a batch over the workers.
    Results are cached by ``(gold, answer)``.
    """

    def __init__(self, workers: int = 1, timeout: float = 10.0, start_timeout: float = 120.0):
        if workers < 1 or timeout <= 0:
            raise ValueError(f"need workers >= 1 and timeout > 0, got {workers}, {timeout}")
        self.workers = workers
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.timeouts = 0  # checks that missed the deadline (scored False)
        self.errors = 0  # checks whose worker crashed or raised (scored False)
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen | None] = [None] * workers
        self._generation = [0] * workers
        self._replies: queue.Queue = queue.Queue()
        self._cache: dict[tuple[str, str, str], bool] = {}
        self._next_id = 0
        atexit.register(self.close)

    # -- public ----------------------------------------------------------------------
    def check(self, gold: str, answer: str) -> bool:
        return self.check_many([(gold, answer)])[0]

    def check_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return self._cached("check", [(g, a) for g, a in pairs])

    def gold_parses(self, golds: Sequence[str]) -> list[bool]:
        """True where math-verify turns the gold into a sympy object, not only a string."""
        return self._cached("parse", [(g, "") for g in golds])

    def close(self) -> None:
        for i, proc in enumerate(self._procs):
            if proc is not None:
                self._stop(i)

    # -- the pool ----------------------------------------------------------------------
    def _cached(self, op: str, pairs: list[tuple[str, str]]) -> list[bool]:
        with self._lock:
            todo = list(dict.fromkeys(p for p in pairs if (op, *p) not in self._cache))
            for pair, verdict in zip(todo, self._run(op, todo), strict=True):
                if len(self._cache) > 200_000:
                    self._cache.clear()
                self._cache[(op, *pair)] = verdict
            return [self._cache[(op, *p)] for p in pairs]

    def _run(self, op: str, pairs: list[tuple[str, str]]) -> list[bool]:
        results: list[bool] = [False] * len(pairs)
        pending = collections.deque(range(len(pairs)))
        busy: dict[int, tuple[int, int, float]] = {}  # worker -> (job, request id, deadline)
        while pending or busy:
            for w in range(self.workers):
                if pending and w not in busy:
                    job = pending.popleft()
                    request = self._send(w, op, *pairs[job])
                    busy[w] = (job, request, time.monotonic() + self.timeout)
            wait = max(0.0, min(d for _, _, d in busy.values()) - time.monotonic())
            try:
                w, generation, reply = self._replies.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for w, (job, _, deadline) in list(busy.items()):
                    if deadline <= now:
                        del busy[w]
                        self.timeouts += 1
                        log.warning(
                            "math-verify: %s of %r vs %r took over %.1f s; scored False",
                            op,
                            *pairs[job],
                            self.timeout,
                        )
                        self._stop(w)
                continue
            if generation != self._generation[w] or w not in busy:
                continue  # a reply from a worker already killed
            job, request, _ = busy.pop(w)
            if reply is None or reply.get("id") != request or "error" in reply:
                self.errors += 1
                log.warning("math-verify: %s of %r vs %r failed: %s", op, *pairs[job], reply)
                if reply is None:
                    self._stop(w)
                continue
            results[job] = bool(reply["ok"])
            if reply.get("timeout"):  # math-verify's own alarm fired in the worker
                self.timeouts += 1
                log.warning(
                    "math-verify: %s of %r vs %r timed out in the worker; scored %s",
                    op,
                    *pairs[job],
                    results[job],
                )
        return results

    def _send(self, w: int, op: str, gold: str, answer: str) -> int:
        self._next_id += 1
        line = json.dumps({"id": self._next_id, "op": op, "gold": gold, "answer": answer})
        for attempt in range(2):
            proc = self._procs[w] or self._start(w)
            try:
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                return self._next_id
            except (BrokenPipeError, OSError):
                self._stop(w)
                if attempt:
                    raise MathVerifierError("math-verify worker died on start") from None
        raise AssertionError("unreachable")

    def _start(self, w: int) -> subprocess.Popen:
        # -P: the script's folder (selftaught/tasks, whose module names could shadow the
        # standard library's) is not put on sys.path
        inner = max(1, int(self.timeout // 3))
        proc = subprocess.Popen(
            [sys.executable, "-P", os.path.abspath(__file__), "--math-worker", str(inner)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._generation[w] += 1
        ready: queue.Queue = queue.Queue()
        generation = self._generation[w]

        def read() -> None:
            first = True
            for line in proc.stdout:
                try:
                    reply = json.loads(line)
                except json.JSONDecodeError:
                    continue
                (ready if first else self._replies).put((w, generation, reply))
                first = False
            (ready if first else self._replies).put((w, generation, None))
            proc.stdout.close()

        threading.Thread(target=read, daemon=True, name=f"math-verify-{w}").start()
        try:
            _, _, hello = ready.get(timeout=self.start_timeout)
        except queue.Empty:
            proc.kill()
            raise MathVerifierError(
                f"math-verify worker did not start in {self.start_timeout:.0f} s"
            ) from None
        if not hello or not hello.get("ready"):
            proc.kill()
            why = (hello or {}).get("fatal", "it exited")
            raise MathVerifierError(
                f"math-verify worker could not start: {why} (pip install math-verify)"
            )
        self._procs[w] = proc
        return proc

    def _stop(self, w: int) -> None:
        proc, self._procs[w] = self._procs[w], None
        self._generation[w] += 1
        if proc is None:
            return
        proc.kill()
        proc.wait()
        with contextlib.suppress(OSError):  # stdout is the reader thread's to close
            proc.stdin.close()


_shared: MathVerifier | None = None
_shared_lock = threading.Lock()


def shared_verifier() -> MathVerifier:
    """One verifier (one worker) for the whole process, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MathVerifier()
        return _shared


# -- the worker: ``python -P math_verifier.py --math-worker SECONDS`` ------------------------
def _has_sympy(parsed: list) -> bool:
    return any(not isinstance(p, str) for p in parsed)


def _math_worker(inner_timeout: int) -> None:
    """Answer JSON lines on stdin; run in this process's main thread, where alarms work."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    # math-verify logs its own (alarm) timeouts and scores them False: catch them to report
    notes: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    mv_log = logging.getLogger("math_verify")
    mv_log.addHandler(Collect(logging.WARNING))
    mv_log.propagate = False
    try:
        from functools import lru_cache

        from math_verify import parse, verify
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises
        out.write(json.dumps({"fatal": f"{type(err).__name__}: {err}"}) + "\n")
        return

    @lru_cache(maxsize=20_000)
    def parsed(text: str) -> list:
        return parse("\\boxed{" + text + "}", parsing_timeout=inner_timeout)

    out.write('{"ready": true}\n')
    for line in sys.stdin:
        job = json.loads(line)
        notes.clear()
        try:
            gold = parsed(job["gold"])
            if job["op"] == "parse":
                ok = _has_sympy(gold)
            else:
                answer = parsed(job["answer"])
                ok = bool(gold) and verify(gold, answer, timeout_seconds=inner_timeout)
            timed_out = any("timeout" in note.lower() for note in notes)
            out.write(json.dumps({"id": job["id"], "ok": bool(ok), "timeout": timed_out}) + "\n")
        except Exception as err:  # noqa: BLE001 - one bad check must not end the worker
            out.write(json.dumps({"id": job["id"], "error": f"{type(err).__name__}: {err}"}))
            out.write("\n")


if __name__ == "__main__" and sys.argv[1:2] == ["--math-worker"]:
    _math_worker(int(sys.argv[2]))
