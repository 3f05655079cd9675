"""One point of each preset family, shortened to 30 steps and 16 examples per bin, trained into a
fresh store; prints its key and a hash of its stored metrics and curves. Run it with two versions of
the code (PYTHONPATH=...) to check that a change leaves run keys and results bit for bit the same.

    python benchmarks/preset_points.py
"""
import hashlib
import json
import tempfile

import torch
import yaml

from lengthgen.experiments.grid import expand
from lengthgen.experiments.presets import find_preset
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

torch.set_num_threads(1)
for preset in ["demo", "golowich_sparsity_cpu", "huang_algorithmic_cpu", "huang_formal_cpu", "coupling_cpu", "natural_language_cpu"]:
    spec = yaml.safe_load(find_preset(preset).read_text())
    cfg = expand(spec, preset)[0]
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps": 30, "eval_every": 10, "checkpoint_every": 1000}),
                                 "eval": cfg.eval.model_copy(update={"examples_per_bin": 16, "validation_examples": min(cfg.eval.validation_examples, 16)})})
    with tempfile.TemporaryDirectory() as root:
        run = train_run(cfg, ResultsStore(root))
        rows = sorted((m.lo, m.hi, m.grp, m.metric, m.value) for m in ResultsStore(root).metrics(keys=[run.key]))
        curves = sorted((c.step, c.name, c.value) for c in ResultsStore(root).curves(run.key))
    digest = hashlib.sha256(json.dumps([rows, curves]).encode()).hexdigest()[:16]
    print(preset, cfg.name, cfg.key(), len(rows), "metrics", digest, flush=True)
