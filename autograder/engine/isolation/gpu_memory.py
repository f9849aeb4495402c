"""GPU memory used by given processes, read through NVML (the driver's library), without CUDA.

The memory watchdog (``engine.isolation.workers``) sums it over a worker's processes. NVML is loaded
with ctypes from the driver's ``libnvidia-ml.so.1``; where there is no driver (a CPU machine)
``GpuMemory.open()`` returns None and nothing is watched.
"""
from __future__ import annotations

import ctypes
import threading


class _ProcessInfo(ctypes.Structure):   # nvmlProcessInfo_v2_t
    _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong),
                ("gpuInstanceId", ctypes.c_uint), ("computeInstanceId", ctypes.c_uint)]


class GpuMemory:
    """``used_bytes(pids)``: GPU memory held by ``pids`` on every GPU of the machine."""

    _lock = threading.Lock()
    _shared: "GpuMemory | None" = None
    _tried = False

    def __init__(self, lib: ctypes.CDLL):
        self.lib = lib
        count = ctypes.c_uint(0)
        if lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) != 0:
            raise OSError("nvmlDeviceGetCount failed")
        self.handles = []
        for index in range(count.value):
            handle = ctypes.c_void_p()
            if lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) == 0:
                self.handles.append(handle)

    @classmethod
    def open(cls) -> "GpuMemory | None":
        """The machine's NVML, initialised once per process; None without an NVIDIA driver."""
        with cls._lock:
            if not cls._tried:
                cls._tried = True
                try:
                    lib = ctypes.CDLL("libnvidia-ml.so.1")
                    if lib.nvmlInit_v2() == 0:
                        cls._shared = cls(lib)
                except (OSError, AttributeError):
                    cls._shared = None
            return cls._shared

    def used_bytes(self, pids: set[int]) -> int:
        total = 0
        for handle in self.handles:
            for query in (self.lib.nvmlDeviceGetComputeRunningProcesses_v2,
                          self.lib.nvmlDeviceGetGraphicsRunningProcesses_v2):
                count = ctypes.c_uint(64)
                infos = (_ProcessInfo * 64)()
                if query(handle, ctypes.byref(count), infos) != 0:
                    continue
                for info in infos[:count.value]:
                    if info.pid in pids and info.usedGpuMemory < 2**63:   # NVML_VALUE_NOT_AVAILABLE is ~0
                        total += info.usedGpuMemory
        return total
