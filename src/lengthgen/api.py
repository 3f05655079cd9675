"""The Python interface for notebooks and scripts: stored results as a table, trained models as
objects that answer task strings.

    import lengthgen
    df = lengthgen.results("lengthgen-runs", experiment="demo")   # tidy pandas DataFrame
    model = lengthgen.load("K6 seed=0")                            # a run key, key prefix or name
    model.generate("b5 p0 b2 p1 b7")                              # the greedy answer, e.g. "1"

Record by record, `lengthgen.store.ResultsStore(root)` reads the same results: its read methods
return frozen dataclasses of `lengthgen.records` (`Run`, `MetricRow`, `CurvePoint`, ...), read by
attribute (`run.status`, `row.value`); `dataclasses.asdict` gives a plain dict.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .config import ConfigError
from .errors import InputError
from .report.frame import results_frame
from .store import ResultsStore
from .tasks import BOS, EOS


def _store(root: str | os.PathLike) -> ResultsStore:
    store = ResultsStore(root)
    if not store.exists():
        raise ConfigError(f"no results store in {str(root)!r}; pass the root your runs wrote to")
    return store


def results(root: str | os.PathLike = "lengthgen-runs", experiment: str | None = None):
    """Every stored metric as a tidy pandas DataFrame: one row per run x length bin x group x
    metric, with the run's key, name, status and its config flattened into dotted columns (`seed`,
    `model.positional`, `task.params.k`, ...). Only `experiment`'s runs when given."""
    return results_frame(_store(root), experiment)


class TrainedModel:
    """A finished run's model and task: task strings in (symbols separated by spaces, as `lengthgen
    tasks` shows them), strings out. Positions are the usual 0, 1, 2, ...: tasks that make their own
    position IDs (coupled tasks) and randomized positions are refused."""

    def __init__(self, module, config, key: str | None, device):
        self.module, self.config, self.key, self.device = module.eval(), config, key, device
        self.task = config.task.build()
        self.vocab = self.task.vocab
        example = self.task.sample(np.random.default_rng(0), self.task.valid_lengths(*config.task.train_lengths)[0])
        if example.position_ids is not None or module.pos.eval_position_sampler() is not None:
            raise ConfigError(f"run {key or ''} ({config.task.name}, {config.model.positional}) uses its own position "
                              "IDs; strings with positions 0, 1, 2, ... would not be what it was trained on")
        # The symbol that ends a prompt (<sep>, or `=` for addition); None for labelling tasks.
        self.prompt_end = None if example.answer_start is None else int(example.inputs[example.answer_start])

    def __repr__(self):
        return f"TrainedModel({self.key}, task={self.config.task.name}, positional={self.config.model.positional})"

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with `<bos>` in front where it is missing."""
        symbols = text.split()
        unknown = [s for s in symbols if s not in self.vocab.stoi]
        if unknown:
            shown = ", ".join(self.vocab.itos[:30]) + (" ..." if len(self.vocab) > 30 else "")
            raise InputError(f"{self.config.task.name}: unknown symbol(s) {unknown[:5]}; symbols: {shown}")
        ids = self.vocab.encode(symbols).tolist()
        return ids if ids[:1] == [BOS] else [BOS, *ids]

    @torch.no_grad()
    def _logits(self, ids: list[int]) -> torch.Tensor:
        if len(ids) > self.module.max_positions:
            raise InputError(f"{len(ids)} tokens: this model has positions for {self.module.max_positions}")
        x = torch.tensor([ids], device=self.device)
        return self.module(x, torch.arange(len(ids), device=self.device)[None]).logits[0]

    def generate(self, prompt: str, max_new_tokens: int | None = None) -> str:
        """The greedy answer to `prompt` (the input, with or without `<bos>` and the prompt's end
        symbol): the symbols generated before `<eos>`, one forward pass per symbol."""
        if self.prompt_end is None:
            raise InputError(f"{self.config.task.name} labels every prefix instead of answering; use predict()")
        ids = self.encode(prompt)
        if ids[-1] != self.prompt_end:
            ids.append(self.prompt_end)
        answer = []
        budget = self.module.max_positions - len(ids) if max_new_tokens is None else max_new_tokens
        for _ in range(budget):
            token = int(self._logits(ids)[-1].argmax())
            if token == EOS:
                break
            answer.append(token)
            ids.append(token)
        return " ".join(self.vocab.decode(answer))

    def predict(self, text: str) -> list[str]:
        """The most likely symbol after each symbol of `text` (teacher-forced; `<bos>` added where
        missing): for labelling tasks (formal languages), the label of each prefix."""
        ids = self.encode(text)
        added = len(ids) - len(text.split())  # the <bos> put in front: its prediction answers nothing typed
        return self.vocab.decode(self._logits(ids).argmax(-1).tolist()[added:])


def load(run: str | os.PathLike, root: str | os.PathLike = "lengthgen-runs", device: str = "cpu") -> TrainedModel:
    """A finished run's model: `run` is its key, a unique key prefix, its name, or a models/<key>.pt
    file (then `root` is not needed). Its stored record, a `records.Run`, is
    `ResultsStore(root).get_run(model.key)` (`model.key` is None for a model file outside the store)."""
    from .training import load_model

    store = ResultsStore(root)
    path = store.find_model(str(run))
    module, config = load_model(path, torch.device(device), cache_dir=store.cache_dir())
    in_store = store.exists() and store.get_run(path.stem) is not None
    return TrainedModel(module, config, path.stem if in_store else None, torch.device(device))
