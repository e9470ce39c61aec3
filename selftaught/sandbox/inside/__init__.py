"""The sandbox's side: everything that runs in the supervisor, the init and the program up to
its exec. ``selftaught.sandbox.run`` starts it as a program of its own, with ``python -I -S
-B -c`` and this package imported as the top-level ``inside``, so its modules use the
standard library only, import each other relatively, and never import ``selftaught`` (it is
not on that sys.path) nor anything of the caller's side. Everything is imported before the
first namespace: once the mounts are made, the package's own directory may be hidden. What it
tells the caller goes through one pipe, a JSON object a line (``supervisor.report``).

Where each layer lives:

* ``namespaces``: the network, mount, PID and IPC namespaces, each dropped alone if refused;
* ``filesystem``: in the mount namespace, the hidden directories, the interpreter's prefix
  mounted back, the program's file and its own work directory, and a /proc of its own;
* ``supervisor``: the process tree (the supervisor, and the init as PID 1), the own user id
  chosen per run, the kill of everything on SIGTERM or the wall-clock alarm, and the reaper
  by user id where there is no PID namespace;
* ``program``: in the program's process before its exec, the rlimits, the switch to its own
  user, no_new_privs and the seccomp filter;
* ``seccomp``: the filter that refuses sockets other than AF_UNIX, and io_uring;
* ``libc``: the calls the os module lacks (unshare, mount, prctl), through ctypes.
"""
