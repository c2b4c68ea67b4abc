"""What this machine offers a fit: memory now available to the process."""

import os

__all__ = ["available_memory", "check_memory", "machine_info"]


def _cpu_model():
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def machine_info():
    """Where figures are measured: the CPU model, its logical and physical
    cores, the BLAS libraries loaded (with the kernel they run, and with
    their thread counts), the OpenBLAS variables that force a kernel, and
    the platform. Plain values, for a report or a benchmark line."""
    import platform

    from threadpoolctl import threadpool_info

    from ._cores import process_cores

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]

    def name(i):
        return (f"{i.get('internal_api')} {i.get('version')} "
                f"({i.get('architecture') or '?'} kernel")

    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": process_cores(),
        "blas": sorted({name(i) + ")" for i in blas}),
        "blas_threads": list(dict.fromkeys(
            f"{name(i)}, {i.get('num_threads')} threads)" for i in blas)),
        "forced": [f"{k}={os.environ[k]}" for k in
                   ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ],
        "platform": platform.platform(),
    }


def _meminfo_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _status_bytes(field):
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rlimit_room():
    """Room left under ``ulimit -v`` (address space) and ``ulimit -d``."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    room = None
    for limit, field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        if not hasattr(resource, limit):
            continue
        soft, _ = resource.getrlimit(getattr(resource, limit))
        used = _status_bytes(field)
        if soft == resource.RLIM_INFINITY or used is None:
            continue
        left = max(0, soft - used)
        room = left if room is None else min(room, left)
    return room


def _cgroup_room():
    """Room left under a cgroup v2 memory limit (containers)."""
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as fh:
            current = int(fh.read().strip())
        return max(0, int(limit) - current)
    except (OSError, ValueError):
        return None


def available_memory():
    """Bytes this process can still allocate, as best the system tells: the
    smallest of the free memory (``MemAvailable``), the room under the
    process's ``ulimit -v``/``-d`` and under a cgroup limit. None when
    nothing can be read."""
    values = [v for v in (_meminfo_available(), _rlimit_room(), _cgroup_room())
              if v is not None]
    return min(values) if values else None


def _gib(n):
    return f"{n / 2**30:.2f} GiB"


def check_memory(n_bytes, what):
    """Raise ``MemoryError`` with a message naming ``what`` when ``n_bytes``
    exceed the memory available now (no check where it cannot be read)."""
    free = available_memory()
    if free is not None and n_bytes > free:
        raise MemoryError(
            f"{what} needs about {_gib(n_bytes)}, more than the {_gib(free)} "
            "of memory available")
