"""Training: a run alone (`loop.train_run`), ensembles of runs as one batched model
(`ensemble.train_ensemble`), data-parallel training (`distributed`), sharing one run lifecycle
(`lifecycle`), one way of building a run (`build`) and trackers that also show its curves (`tracking`)."""

from .build import build_model, load_model, resolve_device
from .ensemble import train_ensemble
from .lifecycle import is_done
from .loop import train_run
from .tracking import TRACKERS, Tracker, make_tracker

__all__ = ["build_model", "load_model", "resolve_device", "train_ensemble", "is_done", "train_run", "TRACKERS",
           "Tracker", "make_tracker"]
