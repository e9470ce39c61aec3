"""Where isolation comes from and what happens without it: the layers on this machine, a
machine that cannot isolate (refused with what is missing and how to get it, unless the user
opts in), the route through a user namespace taken by root too, the remount fallback of
kernels before 5.12, and the sandbox's side staying standard library only."""

from __future__ import annotations

import ast
import ctypes
import os
import sys
import uuid
from pathlib import Path

import pytest

from selftaught.sandbox import (
    REQUIRED,
    IsolationUnavailable,
    SandboxError,
    check,
    isolation,
    isolation_problem,
    run_program,
)
from selftaught.sandbox import run as sandbox_run
from tests.sandbox import unprivileged

INSIDE = Path(sandbox_run.__file__).parent / "inside"
USER = 100_000 + int(uuid.uuid4().int % 800_000)


def test_every_required_layer_comes_up_here(capsys):
    with capsys.disabled():
        print(f"\nsandbox layers here: {' '.join(sorted(isolation()))}")
    assert isolation_problem() is None, isolation_problem()
    assert isolation() >= REQUIRED


def test_as_an_ordinary_user_too():
    if unprivileged.unavailable(USER):
        pytest.skip(unprivileged.unavailable(USER))

    def layers():
        check.probe.cache_clear()
        return check.isolation_problem(), check.isolation()

    problem, layers = unprivileged.run_as(layers, uid=USER)
    assert problem is None, problem
    assert REQUIRED | {"userns"} <= layers and "uid" not in layers  # the caller's own uid


def _like_docker(marker: str):
    """In the child, as an ordinary user: refuse new namespaces as Docker's default
    seccomp profile does (the sandbox's own filter, installed on this process), then ask
    the sandbox and the code task for a run."""
    from selftaught.sandbox.inside import libc, seccomp
    from selftaught.tasks.code import CodeTask, SandboxUnavailable
    from tests.tasks.test_code import FAST, SOLUTIONS, config

    assert libc.load().prctl(38, 1, 0, 0, 0) == 0  # no_new_privs: a filter without root
    assert seccomp.install(libc.load())
    check.probe.cache_clear()
    problem = check.isolation_problem()
    leave = f"open('/tmp/{marker}', 'w').write('ran')\nprint('ran')"
    try:
        run_program(leave)
        required = "ran"
    except IsolationUnavailable as e:
        required = f"refused: {e}"
    ran_before = os.path.exists(f"/tmp/{marker}")
    unisolated = run_program(leave, require_isolation=False).stdout
    try:
        CodeTask(config(eval_size=1))
        refusal = None
    except SandboxUnavailable as e:
        refusal = str(e)
    task = CodeTask(config(eval_size=1, sandbox="unisolated"), limits=FAST)
    sums = {p.id: p for p in task.train_problems() + task.eval_problems()}
    judged = task.is_correct(SOLUTIONS["sum"], sums["sum"])
    return problem, required, ran_before, unisolated, refusal, judged


def test_a_machine_that_cannot_isolate_refuses_and_says_how_to_fix_it():
    if unprivileged.unavailable(USER):
        pytest.skip(unprivileged.unavailable(USER))
    marker = f"selftaught-docker-{uuid.uuid4().hex}"
    try:
        problem, required, ran_before, unisolated, refusal, judged = unprivileged.run_as(
            _like_docker, marker, uid=USER
        )
    finally:
        Path(f"/tmp/{marker}").unlink(missing_ok=True)
    assert "userns" in problem and "Operation not permitted" in problem
    assert "seccomp=unconfined" in problem and "max_user_namespaces" in problem
    assert required.startswith("refused: isolation unavailable: ")
    assert not ran_before  # refused before the program existed
    assert unisolated == "ran\n"  # the explicit opt-in runs it, unisolated
    assert refusal is not None and "task.sandbox: unisolated" in refusal and "userns" in refusal
    assert judged


@pytest.mark.parametrize(
    ("active", "refused", "says"),
    [
        (set(), {"userns": "unshare(userns): Operation not permitted"},
         ["netns", "userns: unshare(userns)", "seccomp=unconfined", "apparmor"]),
        ({"userns", "netns"}, {"mountns": "unshare(mountns): Operation not permitted"},
         ["mountns", "refused a namespace inside the user namespace"]),
        (REQUIRED - {"seccomp"}, {}, ["seccomp missing", "architecture"]),
    ],
    ids=["no-userns", "namespace-denied", "no-seccomp"],
)  # fmt: skip
def test_what_is_missing_is_named_with_how_to_get_it(monkeypatch, active, refused, says):
    result = sandbox_run.RunResult("ok", 0, "", "", 0.1)
    outcome = sandbox_run.Outcome(result, frozenset(active), refused)
    monkeypatch.setattr(check, "probe", lambda: outcome)
    problem = isolation_problem()
    for words in says:
        assert words in problem, (words, problem)
    failed = SandboxError("supervisor: [Errno 13] Permission denied", {"netns"}, refused)
    monkeypatch.setattr(check, "probe", lambda: failed)
    problem = isolation_problem()
    assert "cannot run on this machine: supervisor: [Errno 13]" in problem
    assert "pidns, mountns" not in problem and "ipcns, mountns, pidns missing" in problem


def _root_like_docker():
    from selftaught.sandbox.inside import libc, seccomp
    from selftaught.tasks.code import CodeTask, SandboxUnavailable
    from tests.tasks.test_code import FAST, config

    assert libc.load().prctl(38, 1, 0, 0, 0) == 0
    assert seccomp.install(libc.load())
    check.probe.cache_clear()
    try:
        CodeTask(config(eval_size=1, sandbox="unisolated"), limits=FAST)
        refusal = None
    except SandboxUnavailable as e:
        refusal = str(e)
    return check.isolation_problem(), check.cannot_run(), refusal


def test_root_in_docker_is_refused_with_what_to_do():
    """Root without CAP_SYS_ADMIN and with user namespaces refused (Docker's defaults): no
    isolation; and where the interpreter is where no other user can reach it (here, under
    /root), not even an unisolated run, so even the opt-in is refused, saying why."""
    if unprivileged.unavailable(None, drop_cap_sys_admin=True):
        pytest.skip("needs root")
    problem, cannot, refusal = unprivileged.run_as(
        _root_like_docker, uid=None, drop_cap_sys_admin=True
    )
    assert "userns" in problem and "seccomp=unconfined" in problem
    reachable = all(os.stat(p).st_mode & 0o001 for p in Path(sys.executable).resolve().parents)
    if reachable:
        assert cannot is None and refusal is None
    else:
        assert "cannot reach" in cannot and "chmod o+x" in cannot
        assert refusal is not None and "cannot reach" in refusal


def test_root_through_a_user_namespace_gives_the_same_verdicts(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("root only: an ordinary user always takes this route")
    monkeypatch.setattr(sandbox_run, "_ROUTE", "userns")
    numbers = "\n".join(str(i) for i in range(100_000))
    summed = run_program("import sys\nprint(sum(map(int, sys.stdin.read().split())))", numbers)
    assert (summed.status, summed.stdout) == ("ok", f"{sum(range(100_000))}\n")
    failed = run_program("print('partial')\n1 / 0\n")
    assert (failed.status, failed.returncode, failed.stdout) == ("error", 1, "partial\n")
    who = run_program("import os\nprint(os.getuid(), sorted(p for p in os.listdir('/proc') "
                      "if p.isdigit()))")  # fmt: skip
    assert who.stdout == "1000 ['1', '2']\n"  # not root inside; a /proc of its own


@pytest.mark.parametrize("uid", [None, USER], ids=["root", "user"])
def test_binds_are_read_only_by_remounts_on_kernels_before_5_12(monkeypatch, uid):
    if unprivileged.unavailable(uid):
        pytest.skip(unprivileged.unavailable(uid))
    stdlib = os.path.dirname(os.__file__)
    program = f"""import os
for d in ("/usr", "/usr/lib", {stdlib!r}, "/etc"):
    try:
        open(os.path.join(d, "x"), "w")
        print("WROTE", d)
    except OSError as e:
        print(e.errno)
"""

    def legacy():
        sandbox_run._LEGACY_REMOUNT = True
        return run_program(program)

    result = unprivileged.run_as(legacy, uid=uid)
    assert (result.status, result.stdout) == ("ok", "30\n30\n30\n30\n"), result  # EROFS


def test_a_forged_report_line_is_a_setup_error_not_a_crash():
    report = sandbox_run._parse_report(b'{"active": ["netns"]}\nnot json\n[1]\n')
    assert report["active"] == ["netns"] and "unreadable report" in report["setup_error"]


def test_the_sandbox_side_uses_the_standard_library_only():
    """``inside`` runs with -I -S: only the standard library and its own modules exist."""
    for path in INSIDE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                continue  # its own modules
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (path, name)
    assert ctypes  # the one "foreign" interface it uses is the standard library's ctypes
