"""Test-wide settings: tests train tiny models, which run fastest on one thread; more threads
only add OpenMP synchronisation (and, on a busy machine, waiting for descheduled peers).
Set before torch is imported so that subprocesses started by tests inherit it too."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
