"""Run untrusted, model-written Python programs (B-STaR's APPS task: a sample is correct when
its program passes the test cases) so that they cannot reach anything outside a throwaway box.

Three processes, outermost first:

* the supervisor: the package ``inside`` run as a program of its own (``python -I -S -B -c``
  importing ``inside.supervisor``, see ``run.py``) in a new session with an empty
  environment. As root it moves into new network, mount, PID and IPC namespaces, hides the
  writable and private parts of the filesystem, and stays behind as the one process the
  caller has to kill: on SIGTERM (or its own wall-clock alarm) it kills everything below it.
* the init: PID 1 of the new PID namespace. When it exits the kernel kills every process left
  in the namespace, so no fork, ``setsid()`` or double fork outlives the run.
* the program: limited by rlimits, switched to a user id of its own (unique per run, so
  RLIMIT_NPROC counts only its processes and ``kill(-1)`` as that user reaps exactly them),
  and under a seccomp filter that refuses every socket but AF_UNIX. Then it execs
  ``python -I -S prog.py`` (standard library only: no site-packages).

Each optional layer the kernel refuses (no CAP_SYS_ADMIN, another architecture) is left out
and the rest still apply; :func:`isolation` says which are active on this machine. Without
root there is no user to switch to, so the program runs as the caller. Not covered: memory
summed over processes (each gets ``memory_mb``), world-readable files outside the hidden
directories, and multiprocessing's locks (they need a writable /dev/shm).

The modules: ``run`` is the caller's side (starting the supervisor, collecting the output
under the caps and the deadline, killing, the status), ``judge`` compares a program's output
with the expected one, and ``inside`` is the sandbox's side, where each layer lives in a
module of its own (listed in its docstring).
"""

from selftaught.sandbox.judge import passes_tests, same_output
from selftaught.sandbox.run import RunResult, SandboxError, Status, isolation, run_program

__all__ = [
    "RunResult",
    "SandboxError",
    "Status",
    "isolation",
    "passes_tests",
    "run_program",
    "same_output",
]
