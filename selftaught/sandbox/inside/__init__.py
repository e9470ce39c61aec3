"""The sandbox's side: everything that runs in the supervisor, the init and the program up to
its exec. ``selftaught.sandbox.run`` starts it as a program of its own, with ``python -I -S
-B -c`` and this package imported as the top-level ``inside``, so its modules use the
standard library only, import each other relatively, and never import ``selftaught`` (it is
not on that sys.path) nor anything of the caller's side. Everything is imported before the
first namespace: once the mounts are made, the package's own directory may be hidden. What it
tells the caller goes through one pipe, a JSON object a line (``supervisor.report``).

Where each layer lives:

* ``namespaces``: the network, mount, PID and IPC namespaces, directly as root, else inside
  a user namespace of the run's own (and its id maps), each dropped alone if refused;
* ``filesystem``: the program's root, built in the mount namespace from an allow-list of
  read-only binds, with a /proc of its own and a small writable work directory;
* ``supervisor``: the process tree (the supervisor, and the init as PID 1), the checks that
  stop a run whose required layers did not come up, the kill of everything on SIGTERM or
  the wall-clock alarm, and the reaper by user id where there is no PID namespace;
* ``watch``: the memory cap on the whole process tree, kept by the init;
* ``program``: in the program's process before its exec, the rlimits, the bounding set
  emptied, the switch to its own user, every capability cleared, no_new_privs and the
  seccomp filter;
* ``seccomp``: the filter: sockets other than AF_UNIX, new namespaces, ptrace, mounts and
  the kernel's riskier calls refused;
* ``libc``: the calls the os module lacks (unshare, mount, mount_setattr, pivot_root,
  prctl, capset), through ctypes.
"""
