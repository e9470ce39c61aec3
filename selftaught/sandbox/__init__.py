"""Run untrusted, model-written Python programs (B-STaR's APPS task: a sample is correct when
its program passes the test cases) so that they cannot reach anything outside a throwaway box,
as root and as an ordinary user alike.

Three processes, outermost first:

* the supervisor: the package ``inside`` run as a program of its own (``python -I -S -B -c``
  importing ``inside.supervisor``, see ``run.py``) in a new session with an empty
  environment. It moves into new network, mount, PID and IPC namespaces: directly as root,
  through a user namespace of its own otherwise (``inside.namespaces``). It stays behind as
  the one process the caller has to kill: on SIGTERM (or its own wall-clock alarm) it kills
  everything below it.
* the init: PID 1 of the new PID namespace. It builds the program's filesystem, a new root
  holding only what the interpreter needs, read-only, and a small writable work directory
  (``inside.filesystem``); it reaps, and it keeps the memory of the whole process tree
  under the cap (``inside.watch``). When it exits the kernel kills every process left in
  the namespace, so no fork, ``setsid()`` or double fork outlives the run.
* the program: limited by rlimits, switched to a user id that is not 0 (as root, one of
  the run's own, so RLIMIT_NPROC counts only its processes), with no capability left, and
  under a seccomp filter that refuses other sockets than AF_UNIX, new namespaces, ptrace
  and the kernel's riskier calls (``inside.program``, ``inside.seccomp``). Then it execs
  ``python -I -S prog.py`` (standard library only: no site-packages).

Where a layer cannot be had, ``run_program`` refuses to run (``IsolationUnavailable``)
unless the caller passes ``require_isolation=False``; ``isolation_problem`` says, before
any run, what this machine lacks and how to get it. Not covered: multiprocessing's locks
(they need a writable /dev/shm), and, as an ordinary user, dropping the caller's
supplementary groups (the kernel does not allow it in a user namespace; every place they
could write to is read-only there anyway).

The modules: ``run`` is the caller's side (starting the supervisor, collecting the output
under the caps and the deadline, killing, the status), ``check`` finds what this machine
gives, ``judge`` compares a program's output with the expected one, and ``inside`` is the
sandbox's side, where each layer lives in a module of its own (listed in its docstring).
"""

from selftaught.sandbox.check import cannot_run, isolation, isolation_problem
from selftaught.sandbox.judge import passes_tests, same_output
from selftaught.sandbox.run import (
    REQUIRED,
    IsolationUnavailable,
    RunResult,
    SandboxError,
    Status,
    run_program,
)

__all__ = [
    "REQUIRED",
    "IsolationUnavailable",
    "RunResult",
    "SandboxError",
    "Status",
    "cannot_run",
    "isolation",
    "isolation_problem",
    "passes_tests",
    "run_program",
    "same_output",
]
