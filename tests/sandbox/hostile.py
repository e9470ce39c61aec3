"""The hostile programs of ``test_hostile.py``: each tries one way out of the sandbox.

Every program reads a JSON "world" from its first stdin line: where the caller's secrets,
data and run directory are, the caller's pid, the listeners it opened. (A real program would
have to guess these; giving them away makes each attempt as strong as it can be.) An attempt
that works prints ``ESCAPED`` and whatever it got; one that fails prints ``blocked``. Every
program that is meant to run to its end prints ``done`` last, so a program that broke early
for a dull reason (a typo, a missing module) cannot pass for a contained one. Whatever is
printed is searched for the planted secrets by the test, and the world is checked from
outside afterwards (files, processes, listeners)."""

from __future__ import annotations

from dataclasses import dataclass, field

PRELUDE = """import ctypes, json, os, signal, socket, sys, time
W = json.loads(sys.stdin.readline())
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def escaped(what, got=""):
    print("ESCAPED", what, str(got)[:3000], flush=True)
def blocked(what, why=""):
    print("blocked", what, why, flush=True)
def attempt(what, fn):
    try:
        got = fn()
    except Exception as e:
        blocked(what, type(e).__name__)
        return
    escaped(what, got)
def read(path):
    with open(path, "rb") as f:
        return f.read()
def write(path, text="escaped", mode="a"):
    with open(path, mode) as f:
        f.write(text)
def sys_ok(what, ret):  # refused as the seccomp filter refuses: EPERM, EACCES or ENOSYS
    err = ctypes.get_errno()
    (blocked if ret < 0 and err in (1, 13, 38) else escaped)(what, (ret, err))
"""
DONE = '\nprint("done", flush=True)\n'


@dataclass(frozen=True)
class Case:
    body: str
    finishes: bool = True  # prints "done": it ran to the end
    statuses: frozenset[str] = frozenset({"ok"})
    limits: dict = field(default_factory=dict)
    marked: bool = False  # re-execs itself with the marker (the world comes along on argv)
    stdin: str = ""  # after the world's line

    def source(self) -> str:
        # re-exec'd with the marker on the command line, so every copy can be found from
        # outside; the copy has no stdin line left, so the world comes along on argv
        if self.marked:
            head = PRELUDE.replace(
                "W = json.loads(sys.stdin.readline())",
                "W = json.loads(sys.argv[2] if len(sys.argv) > 2 else sys.stdin.readline())",
            )
            head += (
                "if len(sys.argv) < 2:\n    os.execv(sys.executable, [sys.executable, "
                '"-I", "-S", __file__, W["marker"], json.dumps(W)])\n'
            )
        else:
            head = PRELUDE
        return head + self.body + (DONE if self.finishes else "")


BOMB = frozenset({"timeout", "memory", "killed", "error", "output_limit"})
CASES: dict[str, Case] = {}


def case(name: str, body: str, **kw) -> None:
    assert name not in CASES, name
    CASES[name] = Case(body, **kw)


# The catalogue: one call a program, laid out by hand.
# fmt: off
# -- secrets: the caller's home, environment, processes --------------------------------------
case("home_ssh_key", 'attempt("~/.ssh/id_rsa", lambda: read(W["home"] + "/.ssh/id_rsa"))')
case("home_hf_token", 'attempt("hf token", lambda: read(W["home"] + "/.cache/huggingface/token"))')
case("home_listing", 'attempt("list home", lambda: os.listdir(W["home"]))')
case("home_walk", """found = [os.path.join(d, f) for top in ("/root", "/home")
         for d, _, fs in os.walk(top) for f in fs if "/.pyenv/" not in d]
(escaped if found else blocked)("files in home directories", found[:20])""")
case("environment", """print(dict(os.environ))
(escaped if "HF_TOKEN" in os.environ else blocked)("HF_TOKEN")""")
case("proc_parent_environ", """for pid in {os.getppid(), 1, W["caller"]}:
    attempt(f"/proc/{pid}/environ", lambda: read(f"/proc/{pid}/environ"))""")
case("proc_every_environ", """got = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        got.append(read(f"/proc/{pid}/environ"))
    except OSError:
        pass
print(got)""")
case("proc_caller_visible", """pids = [p for p in os.listdir("/proc") if p.isdigit()]
lines = [read(f"/proc/{p}/cmdline") for p in pids]
(escaped if any(b"pytest" in c for c in lines) else blocked)("caller in /proc", lines)
(escaped if len(pids) > 4 else blocked)("other processes", pids)""")
case("caller_cwd_and_root", """for what in ("cwd", "root"):
    for pid in (os.getppid(), 1):
        attempt(f"/proc/{pid}/{what}", lambda: os.listdir(f"/proc/{pid}/{what}"))""")
case("init_fds", """for fd in range(0, 12):
    try:
        os.open(f"/proc/1/fd/{fd}", os.O_WRONLY)
        escaped(f"/proc/1/fd/{fd}")
    except OSError:
        pass""")
case("forge_report", """for fd in range(3, 64):
    try:
        os.write(fd, b'{"setup_error": "forged"}\\n{"status": 0}\\n')
        escaped(f"wrote to fd {fd}")
    except OSError:
        pass""")
case("etc_shadow", 'attempt("/etc/shadow", lambda: read("/etc/shadow"))')
case("sys_and_kmsg", """for path in ("/sys/class", "/proc/kmsg", "/dev/kmsg", "/dev/mem",
             "/dev/sda"):
    attempt(path, lambda: os.listdir(path) if os.path.isdir(path) else read(path)[:10])""")
# -- the tests' data and the run directory: a program that prints the stored outputs ------------
case("data_file", 'attempt("data file", lambda: read(W["data"]))')
case("run_directory", """found = [open(os.path.join(d, f)).read()
         for d, _, fs in os.walk(W["run"]) for f in fs]
(escaped if found else blocked)("run directory", found)""")
case("package_fixtures", """found = [os.path.join(d, f)
         for d, _, fs in os.walk(W["pkg"]) for f in fs]
(escaped if found else blocked)("package files", found[:5])""")
case("site_packages", """import glob
stdlib = os.path.dirname(os.__file__)
patterns = [stdlib + "/*-packages/*", "/usr/lib/python3*/*-packages/*",
            "/usr/local/lib/python3*/*-packages/*", "/usr/lib/python3/dist-packages/*"]
found = [p for pattern in patterns for p in glob.glob(pattern)]
(escaped if found else blocked)("installed packages", found[:10])""")
case("scan_filesystem", """found, stdlib = [], os.path.dirname(os.__file__)
for top in os.listdir("/"):
    if top in ("proc", "usr") or os.path.islink("/" + top):  # /lib -> usr/lib
        continue  # the system's files, and the kernel's
    for d, subdirs, fs in os.walk("/" + top):
        if d == stdlib:
            subdirs.clear()
            continue
        for f in fs:
            try:
                path = os.path.join(d, f)
                if not os.path.isfile(path) or os.path.getsize(path) > 1 << 20:
                    continue  # /dev/zero never ends
                data = read(os.path.join(d, f))
            except OSError:
                continue
            if b"SELFTAUGHT-" + b"SECRET" in data:  # not as one word: this file has it
                found.append(os.path.join(d, f))
(escaped if found else blocked)("files holding secrets", found)""")
case("tmp_listing", """names = sorted(os.listdir("/tmp"))
(escaped if names != ["prog.py", "work"] else blocked)("/tmp", names)""")
# -- writing outside the work directory -----------------------------------------------------------
case("home_bashrc", 'attempt("~/.bashrc", lambda: write(W["home"] + "/.bashrc", "\\nrm -rf ~\\n"))')
case("home_new_file", 'attempt("new file in home", lambda: write(W["home"] + "/" + W["marker"]))')
case("tmp_dirs", """for d in ("/tmp", "/var/tmp", "/dev/shm", "/run", "/"):
    attempt(d, lambda: write(os.path.join(d, W["marker"])))""")
case("package_dir", 'attempt("package", lambda: write(W["pkg"] + "/" + W["marker"]))')
case("data_and_run", """attempt("data file", lambda: write(W["data"], "{}"))
attempt("run dir", lambda: write(W["run"] + "/" + W["marker"]))""")
case("interpreter_prefix", """import os.path as p
for d in (p.dirname(p.__file__), p.dirname(sys.executable), "/usr/lib", "/etc"):
    attempt(d, lambda: write(os.path.join(d, W["marker"])))
attempt("chmod stdlib", lambda: os.chmod(p.__file__, 0o777))""")
case("symlink_out_of_work", """os.symlink("/tmp/" + W["marker"], "link")
attempt("through a symlink", lambda: write("link"))""")
case("rename_and_link", """attempt("hard link", lambda: os.link(sys.executable, "py"))
attempt("rename prog", lambda: os.rename("/tmp/prog.py", "stolen"))""")
# -- daemons that outlive the program ---------------------------------------------------------
DAEMON = """if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        time.sleep({delay})
        for path in (W["home"] + "/.bashrc", "/tmp/" + W["marker"]):
            try:
                write(path, "\\ndaemon was here\\n")
            except OSError:
                pass
        time.sleep(30)
        os._exit(0)
    os._exit(0)
time.sleep(0.2)"""
case("daemon_double_fork", DAEMON.format(delay=1.0), marked=True)
case("daemon_quick", DAEMON.format(delay=0.3), marked=True)
case("daemon_exec", """if os.fork() == 0:
    os.setsid()
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", W["marker"]])
time.sleep(0.2)""")
case("daemon_parent_killed_first", """r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    os.read(r, 1)
    time.sleep(60)
os.kill(os.getpid(), signal.SIGKILL)""",
     marked=True, finishes=False, statuses=frozenset({"killed"}))
# -- signals to the caller --------------------------------------------------------------------
# the kill may be allowed and have no effect (PID 1 ignores it): "done" shows the program,
# and so its parent, lived on
case("kill_parent", """for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        os.kill(os.getppid(), sig)
    except OSError:
        pass
time.sleep(0.2)""")
case("kill_caller", """for sig in (0, signal.SIGKILL):
    attempt(f"kill caller {sig}", lambda: os.kill(W["caller"], sig))
    attempt(f"kill caller's group {sig}", lambda: os.killpg(W["caller_pgid"], sig))""")
case("kill_everyone", """child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
os.kill(-1, signal.SIGKILL)  # every process it may signal but itself and PID 1
(blocked if os.waitpid(child, 0)[1] == signal.SIGKILL else escaped)("its own child survived")""")
case("kill_init", """for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):
    try:
        os.kill(1, sig)
    except OSError:
        pass
time.sleep(0.2)""")
# -- bombs ----------------------------------------------------------------------------------
case("fork_bomb", """print("bombing", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass""", marked=True, finishes=False, statuses=BOMB,
     limits={"cpu_seconds": 1, "wall_seconds": 2, "max_processes": 8})
case("thread_bomb", """import threading
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        n += 1
except (RuntimeError, MemoryError) as e:
    print("threads", n, e, flush=True)
(escaped if n > 64 else blocked)("threads", n)
os._exit(0)""", finishes=False, statuses=frozenset({"ok"}))
case("memory_bomb", "hoard = []\nwhile True:\n    hoard.append(bytearray(10**6))",
     finishes=False, statuses=frozenset({"memory"}))
case("memory_bomb_forked", """for i in range(12):
    if os.fork() == 0:
        hoard = bytearray(200 << 20)
        for j in range(0, len(hoard), 4096):
            hoard[j] = 1
        time.sleep(10)
        os._exit(0)
time.sleep(10)""", finishes=False, statuses=frozenset({"memory", "timeout"}),
     limits={"wall_seconds": 4, "max_processes": 16})
case("memfd_and_shm", """attempt("memfd", lambda: os.memfd_create("x"))
sys_ok("shmget", libc.shmget(0, 1 << 30, 0o1600))""")
case("pipe_hoard", """pipes = []
try:
    while True:
        r, w = os.pipe()
        os.set_blocking(w, False)
        try:
            while True:
                os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
        pipes.append((r, w))
except OSError as e:
    print("pipes", len(pipes), e)
(escaped if len(pipes) > 200 else blocked)("pipes", len(pipes))""")
case("stdout_bomb", "while True:\n    print('x' * 1000)", finishes=False,
     statuses=frozenset({"output_limit"}), limits={"max_output_bytes": 10_000})
case("stderr_bomb", "while True:\n    sys.stderr.write('x' * 1000)", finishes=False,
     statuses=frozenset({"output_limit"}), limits={"max_output_bytes": 10_000})
case("disk_fill", """n = 0
try:
    for i in range(1000):
        write(f"f{i}", "x" * (1 << 20), "w")
        n += 1
except OSError as e:
    print("stopped", n, e)
(escaped if n >= 100 else blocked)("work directory size", n)""")
case("inode_fill", """n = 0
try:
    while True:
        os.close(os.open(f"i{n}", os.O_CREAT | os.O_WRONLY))
        n += 1
except OSError as e:
    print("stopped", n, e)
(escaped if n > 1000 else blocked)("files", n)""")
case("cpu_hogs", """for i in range(6):
    if os.fork() == 0:
        while True:
            pass
while True:
    pass""", finishes=False, statuses=frozenset({"timeout"}),
     limits={"cpu_seconds": 1, "wall_seconds": 1.5})
# -- namespaces, privileges, kernel interfaces -------------------------------------------------
case("unshare_namespaces", """for name, flag in (("user", 0x10000000), ("mount", 0x20000),
                   ("net", 0x40000000), ("pid", 0x20000000), ("user+mount", 0x10020000)):
    sys_ok(f"unshare {name}", libc.unshare(flag))""")
case("clone_new_user", """nr = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
ret = libc.syscall(nr, 0x10000000 | 17, 0, 0, 0, 0)  # CLONE_NEWUSER | SIGCHLD
if ret == 0:
    os._exit(0)
sys_ok("clone(CLONE_NEWUSER)", ret)
sys_ok("clone3", libc.syscall(435, 0, 0))""")
case("setns_into_host", """for ns in ("mnt", "net", "pid", "user"):
    for pid in (1, os.getppid()):
        try:
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
        except OSError:
            continue
        sys_ok(f"setns {ns} of {pid}", libc.setns(fd, 0))""")
case("mount_and_chroot", """os.mkdir("m")
sys_ok("mount tmpfs", libc.mount(b"tmpfs", b"m", b"tmpfs", 0, None))
sys_ok("mount proc", libc.mount(b"proc", b"m", b"proc", 0, None))
sys_ok("umount /usr", libc.umount2(b"/usr", 2))
sys_ok("chroot", libc.chroot(b"m"))
nr = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
sys_ok("pivot_root", libc.syscall(nr, b"/tmp/work", b"/tmp/work/m"))""")
case("ptrace_and_peek", """nr = {"x86_64": 101, "aarch64": 117}[os.uname().machine]
for pid in (1, os.getppid()):
    sys_ok(f"ptrace attach {pid}", libc.syscall(nr, 16, pid, 0, 0))
attempt("/proc/1/mem", lambda: read("/proc/1/mem"))
buf = ctypes.create_string_buffer(16)
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 16)
sys_ok("process_vm_readv", libc.process_vm_readv(1, iov, 1, iov, 1, 0))""")
case("kernel_surface", """x86 = os.uname().machine == "x86_64"
calls = {"bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
         "keyctl": (250, 219), "add_key": (248, 217), "io_uring_setup": (425, 425),
         "init_module": (175, 105), "kexec_load": (246, 104), "syslog": (103, 116),
         "open_by_handle_at": (304, 265), "fanotify_init": (300, 262), "acct": (163, 89)}
for name, nrs in calls.items():
    sys_ok(name, libc.syscall(nrs[0] if x86 else nrs[1], 0, 0, 0, 0, 0))""")
case("capabilities", """status = read("/proc/self/status").decode()
caps = {l.split(":")[0]: int(l.split()[1], 16) for l in status.splitlines() if l.startswith("Cap")}
(escaped if any(caps.values()) else blocked)("capabilities", caps)
attempt("setuid(0)", lambda: os.setuid(0))
attempt("raise RLIMIT_NPROC", lambda: __import__("resource").setrlimit(6, (10**6, 10**6)))
attempt("realtime",
        lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)))""")
case("setuid_binaries", """import subprocess
for cmd in (["mount", "-t", "tmpfs", "x", "/tmp/work"], ["su", "-c", "id"], ["sudo", "id"]):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=2, stdin=subprocess.DEVNULL)
        (escaped if p.returncode == 0 else blocked)(cmd[0], p.returncode)
    except (OSError, subprocess.SubprocessError) as e:
        blocked(cmd[0], type(e).__name__)""")
case("proc_sys_writes", """for path in ("/proc/sys/kernel/core_pattern", "/proc/sysrq-trigger",
             "/proc/sys/user/max_user_namespaces", "/proc/self/uid_map"):
    attempt(path, lambda: write(path, "0"))""")
# -- the network ------------------------------------------------------------------------------
case("tcp_loopback",
     'attempt("tcp", lambda: socket.create_connection(("127.0.0.1", W["tcp"]), 1))')
case("udp_loopback", """attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        .sendto(b"x", ("127.0.0.1", W["udp"])))""")
case("external_and_v6", """attempt("external",
        lambda: socket.create_connection(("10.255.255.1", 80), 1))
attempt("ipv6", lambda: socket.create_connection(("::1", W["tcp"]), 1))
attempt("dns", lambda: socket.getaddrinfo("example.com", 80))""")
case("raw_and_netlink", """for fam, typ in ((socket.AF_PACKET, socket.SOCK_RAW),
                 (socket.AF_NETLINK, socket.SOCK_RAW), (socket.AF_INET, socket.SOCK_RAW)):
    attempt(f"socket {fam}", lambda: socket.socket(fam, typ))
sys_ok("libc socket", libc.socket(2, 1, 0))""")
case("unix_sockets", """attempt("abstract",
        lambda: socket.socket(socket.AF_UNIX).connect("\\0" + W["abstract"]))
attempt("path", lambda: socket.socket(socket.AF_UNIX).connect(W["unix"]))""")
# -- inputs the sandbox must answer with a verdict, not an exception -----------------------------
OVERSIZE = "x = 1\n" + "#" * (5 << 20)  # a 5 MB program
case("oversized_program", OVERSIZE, finishes=False, statuses=frozenset({"rejected"}))
case("lone_surrogate_source", 'print("\ud800")', finishes=False,
     statuses=frozenset({"rejected"}))
case("lone_surrogate_input", "", stdin="\ud800", statuses=frozenset({"rejected"}),
     finishes=False)
# fmt: on
