"""The hostile programs of ``hostile.py``, run as root, as an ordinary user and as root
without CAP_SYS_ADMIN (Docker's default), each against a world of planted secrets: a key
and a token in the caller's HOME, HF_TOKEN in the caller's environment, a data file holding
the expected outputs and a run directory, all world-readable and world-writable, so that
only the sandbox stands between them and the program. Contained means: every run returned
a verdict (no exception), with the status the case expects, nothing printed ``ESCAPED``, no
secret in any output, the program ran to its end where it should; and afterwards (once a
daemon would have acted) the planted files unchanged, no file left in the caller's home,
/tmp, /var/tmp, /dev/shm, the package, the data or the run directory, no process left, no
connection to the caller's listeners, and the caller alive.

Each mode's battery runs once, in a forked child (so that even a program that killed its
caller would only end the child), four programs at a time."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from selftaught.sandbox import check, run_program
from tests.sandbox import unprivileged
from tests.sandbox.hostile import CASES

PACKAGE = Path(__file__).resolve().parents[2] / "selftaught"
# an unprivileged uid no account has: "no process of this uid is left" is then exact, even
# with other test runs on the machine
USER_UID = 100_000 + secrets.randbelow(800_000)
MODES = {
    "root": {"uid": None},
    "user": {"uid": USER_UID},
    "root_without_cap_sys_admin": {"uid": None, "drop_cap_sys_admin": True},
}
LIMITS = {"cpu_seconds": 2, "wall_seconds": 4, "max_processes": 16}
DAEMON_DELAY = 1.2  # the slowest daemon acts 1 s after its start; wait this long after
FIGURES: dict[str, str] = {}


def battery(world: dict) -> dict:
    """In the child: every case through the sandbox, four at a time; what each returned
    (or raised), and the layers this mode had."""
    check.probe.cache_clear()  # a forked copy of the parent's answer would be the parent's
    world = dict(world, caller=os.getpid(), caller_pgid=os.getpgid(0))  # the caller: this child
    problem = check.isolation_problem()
    if problem:
        return {"unavailable": problem}

    def one(name: str):
        case = CASES[name]
        stdin = json.dumps(world) + "\n" + case.stdin
        try:
            r = run_program(case.source(), stdin, **{**LIMITS, **case.limits})
            return name, ("result", r.status, r.stdout, r.stderr, r.reason)
        except Exception as e:  # noqa: BLE001 - an exception is what the test looks for
            return name, ("raised", f"{type(e).__name__}: {e}")

    with ThreadPoolExecutor(4) as pool:
        results = dict(pool.map(one, CASES))
    return {"results": results, "layers": sorted(check.isolation())}


class World:
    """The planted secrets, files and listeners of one mode, and the checks afterwards."""

    def __init__(self, uid: int | None):
        self.marker = f"selftaught-hostile-{uuid.uuid4().hex}"
        self.base = Path(tempfile.mkdtemp(prefix="selftaught-world-", dir="/tmp"))
        self.secrets = {
            k: f"SELFTAUGHT-SECRET-{k}-{uuid.uuid4().hex}"
            for k in ("key", "hf", "env", "data", "run")
        }
        self.home = self.base / "home"
        data_dir, self.run_dir = self.base / "data", self.base / "run" / "iter_0000"
        self.data = data_dir / "problems.jsonl"
        files = {
            self.home / ".ssh" / "id_rsa": self.secrets["key"],
            self.home / ".cache" / "huggingface" / "token": self.secrets["hf"],
            self.home / ".bashrc": "export PATH=$PATH:~/bin\n",
            self.data: json.dumps({"question": "q", "tests": [{"output": self.secrets["data"]}]}),
            self.run_dir / "samples.jsonl": self.secrets["run"],
        }
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        for path in [self.base, *self.base.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)  # only the sandbox protects them
            if uid is not None:
                os.chown(path, uid, uid)
        self.planted = self._tree()
        self.tcp = socket.create_server(("127.0.0.1", 0))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.abstract = socket.socket(socket.AF_UNIX)
        self.abstract.bind("\0" + self.marker)
        self.unix = socket.socket(socket.AF_UNIX)
        self.unix.bind(str(self.base / "sock"))
        os.chmod(self.base / "sock", 0o777)
        for s in (self.abstract, self.unix):
            s.listen()
        for s in (self.tcp, self.udp, self.abstract, self.unix):
            s.setblocking(False)

    def for_programs(self) -> dict:
        return {
            "home": str(self.home), "data": str(self.data), "run": str(self.run_dir.parent),
            "pkg": str(PACKAGE), "tcp": self.tcp.getsockname()[1], "udp": self.udp.getsockname()[1],
            "abstract": self.marker, "unix": str(self.base / "sock"), "marker": self.marker,
        }  # fmt: skip

    def _tree(self) -> dict[str, str]:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(self.base.rglob("*"))
            if not p.is_socket()
        }

    def leftovers(self, uid: int | None) -> list[str]:
        """What the programs left behind or reached, after the daemons' time."""
        found = []
        if self._tree() != self.planted:
            changed = set(self._tree().items()) ^ set(self.planted.items())
            found.append(f"planted files changed: {sorted(changed)[:6]}")
        for folder in (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), PACKAGE, Path.cwd()):
            if folder.is_dir() and any(self.marker in p.name for p in folder.iterdir()):
                found.append(f"a file left in {folder}")
        found += [f"process left: {p}" for p in processes(self.marker, uid)]
        for name, sock in (("tcp", self.tcp), ("abstract", self.abstract), ("unix", self.unix)):
            try:
                sock.accept()
                found.append(f"a connection to the {name} listener")
            except BlockingIOError:
                pass
        try:
            self.udp.recv(1)
            found.append("a datagram to the udp listener")
        except BlockingIOError:
            pass
        return found

    def close(self):
        for s in (self.tcp, self.udp, self.abstract, self.unix):
            s.close()
        shutil.rmtree(self.base, ignore_errors=True)


def processes(marker: str, uid: int | None) -> list[str]:
    """Live processes with the marker on their command line, or of ``uid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # gone while we looked
            continue
        real_uid = int(next(li for li in status.splitlines() if li.startswith("Uid:")).split()[1])
        if marker.encode() in cmdline or (uid is not None and real_uid == uid):
            found.append(f"{pid} uid {real_uid}: {cmdline[:120]!r}")
    return found


@pytest.fixture(scope="module", params=list(MODES))
def outcome(request):
    mode = dict(MODES[request.param])
    why = unprivileged.unavailable(mode["uid"], mode.get("drop_cap_sys_admin", False))
    if why:
        pytest.skip(f"{request.param}: {why}")
    if os.geteuid() != 0:
        mode["uid"] = None  # an ordinary user's suite: the programs run as itself
    world = World(mode["uid"])
    try:
        start = time.monotonic()
        out = unprivileged.run_as(
            battery, world.for_programs(), uid=mode["uid"], home=str(world.home),
            env={"HF_TOKEN": world.secrets["env"]},
            drop_cap_sys_admin=mode.get("drop_cap_sys_admin", False),
        )  # fmt: skip
        seconds = time.monotonic() - start
        if "unavailable" in out:
            pytest.skip(f"{request.param}: the kernel cannot isolate here: {out['unavailable']}")
        time.sleep(DAEMON_DELAY)
        out.update(mode=request.param, seconds=seconds, world=world)
        out["leftovers"] = world.leftovers(mode["uid"])
        yield out
    finally:
        world.close()


def problems(out: dict, name: str) -> list[str]:
    """Why a case was not contained (empty: it was)."""
    case, got = CASES[name], out["results"][name]
    if got[0] == "raised":
        return [f"raised out of run_program: {got[1]}"]
    _, status, stdout, stderr, reason = got
    found = []
    if status not in case.statuses:
        found.append(f"status {status} ({reason}), expected {sorted(case.statuses)}: "
                     f"{stderr[-600:]}")  # fmt: skip
    found += [line[:300] for line in stdout.splitlines() if line.startswith("ESCAPED")]
    world = out["world"]
    found += [f"leaked {k}" for k, s in world.secrets.items() if s in stdout or s in stderr]
    if case.finishes and not stdout.rstrip().endswith("done"):
        found.append(f"did not run to its end: {stdout[-300:]!r} {stderr[-600:]!r}")
    return found


@pytest.mark.parametrize("name", CASES)
def test_hostile_program_is_contained(outcome, name):
    assert problems(outcome, name) == []


def test_nothing_left_behind_and_the_tally(outcome, capsys):
    contained = [n for n in CASES if not problems(outcome, n)]
    clean = not outcome["leftovers"]
    FIGURES[outcome["mode"]] = f"{len(contained)}/{len(CASES)}"
    with capsys.disabled():
        print(
            f"\nsandbox as {outcome['mode']}: {len(contained)}/{len(CASES)} hostile programs "
            f"contained, {'nothing' if clean else 'SOMETHING'} left behind, "
            f"{outcome['seconds']:.1f} s; layers: {' '.join(outcome['layers'])}"
        )
    assert outcome["leftovers"] == []
    assert len(contained) == len(CASES)
