"""The sandbox policy: what a worker applies to itself before its first request.

Built by the engine (``engine.isolation.workers``), sent as JSON, applied by the worker
(``worker.sandbox.confine``). One set of defaults, here, for both sides.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class SandboxPolicy:
    uid: int | None = None                    # switch to this user (only when started as root)
    gid: int | None = None
    max_processes: int = 128                  # RLIMIT_NPROC, counted per user: applied only with a user switch
    max_file_mib: int = 64                    # RLIMIT_FSIZE
    max_open_files: int = 256                 # RLIMIT_NOFILE
    max_cpu_s: int = 600                      # RLIMIT_CPU (the test's own time limit is the real one)
    max_address_space_mib: int | None = None  # extra address space over the fork's (CPU workers only)
    block_network: bool = True                # seccomp: no socket() but AF_UNIX

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SandboxPolicy":
        """From the JSON the engine sent; unknown keys are ignored, missing ones take the defaults."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in dict(data).items() if k in names})
