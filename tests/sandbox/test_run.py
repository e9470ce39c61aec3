"""The sandbox against hostile programs. Each case asserts exactly how it is contained, and the
last test tallies them; every program is held to a second or two of CPU, since the machine
running these is usually busy training."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest

from selftaught.sandbox import SandboxError, isolation, run_program
from selftaught.sandbox import run as sandbox  # the module whose _LAYERS the tests narrow

MARKER = f"selftaught-hostile-{uuid.uuid4().hex}"  # names this run's files and processes

# Re-exec'd with the marker on its command line, so each copy can be found from outside.
WITH_MARKER = f"""import os, sys
if len(sys.argv) < 2:
    os.execv(sys.executable, [sys.executable, "-I", "-S", __file__, {MARKER!r}])
"""


def marked_processes(marker: str = MARKER, wait: float = 1.0) -> list[int]:
    """Live processes with ``marker`` on their command line. A SIGKILLed process can take a
    moment to go, so look again for up to ``wait`` seconds; zombies have no command line."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:  # gone while we looked
                pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def blocked_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("blocked")]


HOSTILE: dict[str, Callable[[], None]] = {}
CONTAINED: dict[str, bool] = {}


def hostile(case: Callable[[], None]) -> Callable[[], None]:
    HOSTILE[case.__name__] = case
    return case


@hostile
def infinite_loop():
    result = run_program("while True:\n    pass\n", cpu_seconds=1, wall_seconds=5)
    assert result.status == "timeout"
    assert result.returncode in (-signal.SIGXCPU, None)  # CPU limit, or wall if starved
    assert result.seconds < 6


@hostile
def sleep_forever():
    result = run_program("import time\ntime.sleep(1000)\n", wall_seconds=1)
    assert (result.status, result.returncode) == ("timeout", None)
    assert 1 <= result.seconds < 2.5


BOMB = """print("bombing", flush=True)
while True:
    try:
        os.fork()
    except OSError:  # RLIMIT_NPROC: keep trying, as a real bomb would
        pass
"""


@hostile
def fork_bomb():
    bomb = WITH_MARKER + BOMB
    result = run_program(bomb, cpu_seconds=1, wall_seconds=2, max_processes=8)
    assert result.status == "timeout" and "bombing" in result.stdout
    assert result.seconds < 3.5
    assert marked_processes() == []
    assert run_program("print(1)").stdout == "1\n"  # and the next run is unaffected


@hostile
def orphan_escapes_session():
    """A child in a session of its own, ignoring SIGHUP, still there when the parent ends."""
    result = run_program(ESCAPEE)
    assert result.status == "ok" and "ready" in result.stdout  # the child did run
    assert marked_processes() == []


ESCAPEE = f"""import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c",
                 "import signal, time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
                 "print('ready', flush=True); time.sleep(60)", {MARKER!r}])
    os._exit(0)
time.sleep(0.5)
"""


@hostile
def memory_bomb():
    result = run_program("hoard = []\nwhile True:\n    hoard.append(bytearray(10**6))\n")
    assert (result.status, result.returncode) == ("memory", 1)
    assert result.stderr.rstrip().endswith("MemoryError")


@hostile
def huge_file():
    result = run_program("open('big', 'wb').write(b'x' * (64 << 20))\n")
    assert result.status == "error" and "File too large" in result.stderr


@hostile
def write_outside_workdir():
    targets = [f"/tmp/{MARKER}", f"/var/tmp/{MARKER}", f"/dev/shm/{MARKER}",
               str(Path.home() / MARKER), str(Path(__file__).parent / MARKER)]  # fmt: skip
    program = f"""for path in {targets!r}:
    try:
        open(path, "w").write("escaped")
        print("WROTE", path)
    except OSError as e:
        print("blocked", path, e)
open("mine", "w").write("fine")
print(open("mine").read())
"""
    result = run_program(program)
    assert result.status == "ok", result.stderr
    assert len(blocked_lines(result.stdout)) == len(targets), result.stdout
    assert result.stdout.endswith("fine\n")  # the work directory itself is writable
    assert not any(os.path.exists(t) for t in targets)


@hostile
def loopback_socket():
    """TCP and UDP to listeners of ours on 127.0.0.1, plus a raw libc socket() via ctypes."""
    with (
        socket.create_server(("127.0.0.1", 0)) as tcp,
        socket.socket(type=socket.SOCK_DGRAM) as udp,
    ):
        udp.bind(("127.0.0.1", 0))
        program = f"""import ctypes, socket
try:
    socket.create_connection(("127.0.0.1", {tcp.getsockname()[1]}), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("blocked tcp", e)
try:
    socket.socket(type=socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", {udp.getsockname()[1]}))
    print("SENT")
except OSError as e:
    print("blocked udp", e)
fd = ctypes.CDLL(None).socket(socket.AF_INET, socket.SOCK_STREAM, 0)
print("blocked libc" if fd < 0 else "LIBC SOCKET")
"""
        result = run_program(program)
        assert result.status == "ok", result.stderr
        assert len(blocked_lines(result.stdout)) == 3, result.stdout
        tcp.setblocking(False)
        udp.setblocking(False)
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recv(1)


@hostile
def external_socket():
    # connect only, to an unroutable address: nothing is ever sent off this machine
    program = """import socket
try:
    socket.create_connection(("10.255.255.1", 80), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("blocked", e)
"""
    result = run_program(program)
    assert result.status == "ok" and result.stdout.startswith("blocked"), result.stdout
    assert result.seconds < 1  # refused at once, not a connect that timed out


@hostile
def parent_environment_secret():
    program = f"""import os
seen = {MARKER!r} in str(os.environ)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        seen = seen or {MARKER!r}.encode() in open(f"/proc/{{pid}}/environ", "rb").read()
    except OSError:
        pass
print("FOUND" if seen else "blocked")
"""
    with mock.patch.dict(os.environ, {"SELFTAUGHT_SECRET": MARKER}):
        result = run_program(program)
    assert result.status == "ok" and result.stdout == "blocked\n", result.stdout


@hostile
def signal_parent():
    """Signal 0 only checks that a kill would be allowed, so a failure here harms nothing."""
    program = """import os
for pid in (int(input()), os.getppid()):
    try:
        os.kill(pid, 0)
        print("COULD SIGNAL", pid)
    except OSError as e:
        print("blocked", pid, e)
"""
    result = run_program(program, f"{os.getpid()}\n")
    assert len(blocked_lines(result.stdout)) == 2, result.stdout


@hostile
def huge_output():
    result = run_program("while True:\n    print('x' * 1000)\n", max_output_bytes=10_000)
    assert (result.status, result.returncode) == ("output_limit", None)
    assert len(result.stdout) == 10_000 and result.seconds < 2


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_program_is_contained(name):
    CONTAINED[name] = False
    HOSTILE[name]()
    CONTAINED[name] = True


def test_every_hostile_case_was_contained(capsys):
    """The tally, running any case the parametrized test did not (e.g. under -k)."""
    for name, case in HOSTILE.items():
        if name not in CONTAINED:
            try:
                case()
                CONTAINED[name] = True
            except AssertionError:
                CONTAINED[name] = False
    contained = sorted(name for name, ok in CONTAINED.items() if ok)
    with capsys.disabled():
        print(f"\nsandbox: {len(contained)}/{len(HOSTILE)} hostile cases contained; "
              f"layers: {' '.join(sorted(isolation()))}")  # fmt: skip
    assert contained == sorted(HOSTILE)


# -- benign programs ------------------------------------------------------------------------------
def test_echo_stdin():
    result = run_program("import sys\nsys.stdout.write(sys.stdin.read())\n", "a b\nc\n")
    assert (result.status, result.returncode, result.stdout) == ("ok", 0, "a b\nc\n")


def test_stdin_larger_than_a_pipe_buffer():
    numbers = "\n".join(str(i) for i in range(200_000))
    result = run_program("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", numbers)
    assert (result.status, result.stdout) == ("ok", f"{sum(range(200_000))}\n")


def test_raising_program_is_an_error():
    result = run_program("print('partial')\n1 / 0\n")
    assert (result.status, result.returncode, result.stdout) == ("error", 1, "partial\n")
    assert "ZeroDivisionError" in result.stderr


# -- which layers, and the fallbacks --------------------------------------------------------------
def test_isolation_layers_present(capsys):
    layers = isolation()
    with capsys.disabled():
        print(f"\nsandbox layers active here: {' '.join(sorted(layers))}")
    assert layers & {"netns", "seccomp"}, "nothing keeps the network out"
    if os.geteuid() == 0:
        assert {"uid", "no_new_privs"} <= layers


def narrowed(monkeypatch, *layers: str) -> None:
    if not set(layers) <= isolation():
        pytest.skip(f"needs {layers}, this machine has {sorted(isolation())}")
    monkeypatch.setattr(sandbox, "_LAYERS", frozenset(layers))


@pytest.mark.parametrize(
    "wall", [("netns", "mountns"), ("seccomp", "mountns")], ids=["netns", "seccomp"]
)
def test_network_kept_out_by_either_layer_alone(monkeypatch, wall):
    narrowed(monkeypatch, *wall)
    with socket.create_server(("127.0.0.1", 0)) as server:
        program = f"""import socket
try:
    socket.create_connection(("127.0.0.1", {server.getsockname()[1]}), timeout=1)
    print("CONNECTED")
except OSError as e:
    print("blocked", type(e).__name__)
"""
        result = run_program(program)
    # the namespace has no route even to loopback; seccomp refuses the socket itself
    expected = "PermissionError" if "seccomp" in wall else "OSError"
    assert result.stdout == f"blocked {expected}\n", result.stdout + result.stderr


def test_strays_reaped_without_a_pid_namespace(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("the reaper needs the run's own user id, which needs root")
    narrowed(monkeypatch, "mountns", "netns", "seccomp")
    result = run_program(ESCAPEE)
    assert result.status == "ok" and "ready" in result.stdout
    assert marked_processes() == []


def test_without_mount_namespace_an_unreachable_interpreter_fails_closed(monkeypatch):
    """The run's user must be able to reach the interpreter; when it cannot, the sandbox
    refuses rather than run the program as root."""
    reachable = all(os.stat(p).st_mode & 0o001 for p in Path(sys.executable).resolve().parents)
    if os.geteuid() != 0 or reachable:
        pytest.skip("only a root caller with the interpreter in a private directory")
    monkeypatch.setattr(sandbox, "_LAYERS", frozenset())
    with pytest.raises(SandboxError, match="Permission denied"):
        run_program("print(1)")
