"""Confining a worker before it runs any student code: limits, no network, an unprivileged user.

``confine(policy)`` is called once in a freshly forked worker, before its first request.
``policy`` is JSON data from the engine: a ``wire.policy.SandboxPolicy``.

It returns notes on what it could not apply (e.g. no seccomp on this kernel); everything it
applies holds for the worker and all its descendants. The network is blocked by a seccomp
filter: ``socket()`` for any family but AF_UNIX, and ``io_uring_setup`` (which can create
sockets without ``socket()``), fail with EACCES; so does every syscall of a foreign ABI (x32,
i386), which would otherwise bypass the filter.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct

from autograder.wire.policy import SandboxPolicy

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
AF_UNIX = 1
X32_SYSCALL_BIT = 0x40000000

# (audit arch, socket, io_uring_setup) per machine
SYSCALLS = {"x86_64": (0xC000003E, 41, 425), "aarch64": (0xC00000B7, 198, 425)}

# classic BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
RET_K = 0x06


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def network_filter(machine: str) -> bytes:
    """The seccomp program (struct sock_filter[]) that denies non-AF_UNIX sockets and io_uring."""
    arch, nr_socket, nr_io_uring_setup = SYSCALLS[machine]
    deny = SECCOMP_RET_ERRNO | errno.EACCES
    program = [
        _bpf(LD_W_ABS, 0, 0, 4),                   # 0: A = seccomp_data.arch
        _bpf(JEQ_K, 0, 7, arch),                   # 1: foreign ABI -> deny (9)
        _bpf(LD_W_ABS, 0, 0, 0),                   # 2: A = seccomp_data.nr
        _bpf(JGE_K, 5, 0, X32_SYSCALL_BIT),        # 3: x32 -> deny (9)
        _bpf(JEQ_K, 4, 0, nr_io_uring_setup),      # 4: io_uring -> deny (9)
        _bpf(JEQ_K, 0, 2, nr_socket),              # 5: not socket() -> allow (8)
        _bpf(LD_W_ABS, 0, 0, 16),                  # 6: A = args[0] (the family; low word)
        _bpf(JEQ_K, 0, 1, AF_UNIX),                # 7: AF_UNIX -> allow (8), else deny (9)
        _bpf(RET_K, 0, 0, SECCOMP_RET_ALLOW),      # 8
        _bpf(RET_K, 0, 0, deny),                   # 9
    ]
    return b"".join(program)


def block_network() -> str | None:
    """Install the network filter on this process (inherited by its children); None or why not."""
    machine = platform.machine()
    if machine not in SYSCALLS:
        return f"no seccomp filter for {machine}: the network is not blocked"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    program = network_filter(machine)
    buffer = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        return f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}; the network is not blocked"
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        return f"seccomp is unavailable ({os.strerror(ctypes.get_errno())}); the network is not blocked"
    return None


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit(which: int, value: int) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def confine(data: dict) -> list[str]:
    """Apply the policy ``data`` to this process (see the module docstring); returns notes for debug output."""
    policy = SandboxPolicy.from_json(data)
    notes = []
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # an oversized write fails with EFBIG, clearly
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_FSIZE, int(policy.max_file_mib) * 2**20)
    _limit(resource.RLIMIT_NOFILE, int(policy.max_open_files))
    cpu = int(policy.max_cpu_s)
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5 if hard == resource.RLIM_INFINITY else min(cpu + 5, hard)))
    if policy.max_address_space_mib:
        _limit(resource.RLIMIT_AS, _vm_size_bytes() + int(policy.max_address_space_mib) * 2**20)
    uid, gid = policy.uid, policy.gid
    if uid is not None and gid is not None:
        _limit(resource.RLIMIT_NPROC, int(policy.max_processes))   # counted per user
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise RuntimeError("could not switch to the worker user")
    if policy.block_network:
        why = block_network()
        if why:
            notes.append(why)
    return notes
