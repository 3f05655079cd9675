"""Process utilities shared by sweep workers and batch workers: parent death, cores, threads."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

PARENT_POLL_S = 0.2  # where PDEATHSIG is missing (not Linux)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def environment(**values: str):
    """Set environment variables for processes started inside the block (children copy it at start)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def thread_environment(threads: int):
    """`environment` pinning every BLAS/OpenMP thread pool of the children to `threads`."""
    return environment(**{var: str(threads) for var in THREAD_ENV_VARS})


def exit_with_parent(parent: int):
    """Exit this process as soon as its parent `parent` is gone, even mid-run.

    A killed driver must not leave workers training: the rerun of the sweep would start the same
    runs a second time next to them, and a run finishing after the kill would hide where it landed.
    On Linux the kernel sends SIGKILL the moment the parent dies (prctl PDEATHSIG); elsewhere a
    thread polls for re-parenting.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # died before the request took effect
            os._exit(1)
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()
