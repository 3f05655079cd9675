"""Language modelling on real text (docs/design.md §4.5): the task `lm`.

    inputs    = w[s] … w[s+n-1]      a contiguous window of the training stream (text/tokenized.py)
    targets   = w[s+1] … w[s+n]      the next token at every position
    loss_mask = 1 … 1                every position scored

`length` n is the window's number of tokens (the context). `answer_start` is None: nothing is
generated. The window start s is uniform over the training stream. `context` is L, the training
context the evaluation is measured in: by default training uses windows of L tokens and evaluation
contexts L, 2L, 4L, 8L (bins [C, C]), each scored per position bucket [0,L), [L,2L), [2L,4L), …
on held-out documents (lm_eval.py). A model trained on longer windows (the 8L reference of the
sparsity probe) keeps `context: L` and sets `task.train_lengths: [8L, 8L]`.

The corpus, its split and its tokenizer are read lazily on first use, so that validating a config
costs nothing; the tokenized corpus is cached under the directory given by `set_cache_dir` (`UsesCache`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..text.corpus import check_source, corpus_fingerprint, load_documents, split_documents
from ..text.tokenized import TokenizedCorpus, tokenized_corpus
from .base import SPECIALS, Example, Task, UsesCache, Vocab, register_task


@register_task
class LanguageModelling(Task, UsesCache):
    name = "lm"
    summary = "language modelling on real text: contiguous windows, every position scored"
    format = "window w[s..s+n-1] -> next tokens w[s+1..s+n], all scored (docs: <bos> + BPE tokens)"
    evaluation = "context_buckets"

    def __init__(self, corpus: str = "sotu", context: int = 128, vocab_size: int = 8192, min_frequency: int = 2,
                 valid_fraction: float = 0.1, reader: str = "builtin", sample_by: str = "document",
                 text_field: str = "text", hf_split: str = "train", hf_config: str | None = None):
        check_source(corpus, reader, sample_by)
        if context < 1:
            raise InputError(f"lm: context must be >= 1, got {context}")
        if not 0 < valid_fraction < 1:
            raise InputError(f"lm: valid_fraction must be in (0, 1), got {valid_fraction}")
        self.corpus, self.context, self.vocab_size, self.min_frequency = corpus, context, vocab_size, min_frequency
        self.valid_fraction, self.reader, self.sample_by, self.text_field = valid_fraction, reader, sample_by, text_field
        self.hf_split, self.hf_config = hf_split, hf_config
        self.default_train_lengths = (context, context)
        self.default_eval_bins = tuple((m * context, m * context) for m in (1, 2, 4, 8))
        self.cache_dir: Path | None = None
        self._data: TokenizedCorpus | None = None
        self._vocab: Vocab | None = None

    def set_cache_dir(self, directory: Path) -> None:
        self.cache_dir = Path(directory)

    @property
    def data(self) -> TokenizedCorpus:
        if self._data is None:
            docs = load_documents(self.corpus, self.reader, self.sample_by, self.text_field, self.hf_split,
                                  self.hf_config)
            train, valid = split_documents(docs, self.valid_fraction)
            self._data = tokenized_corpus(train, valid, self.vocab_size, self.min_frequency, SPECIALS, self.cache_dir,
                                          corpus_fingerprint(self.corpus, docs))
        return self._data

    @property
    def vocab(self) -> Vocab:
        if self._vocab is None:
            self._vocab = Vocab(self.data.itos()[len(SPECIALS):])  # the tokenizer puts SPECIALS at ids 0-3
        return self._vocab

    def provenance(self) -> dict:
        return {"corpus": self.data.source}

    def seq_len(self, length: int) -> int:
        return length

    def sample(self, rng: np.random.Generator, length: int, **overrides) -> Example:
        if overrides:
            raise InputError(f"lm: no breakdown variables, got {sorted(overrides)}")
        self.check_length(length)
        stream = self.data.train
        if len(stream) <= length:
            raise InputError(f"lm: the training split has {len(stream)} tokens, fewer than a window of {length} + 1")
        start = int(rng.integers(0, len(stream) - length))
        window = stream[start:start + length + 1].astype(np.int64)
        return Example(window[:-1], window[1:], np.ones(length, dtype=bool), length=length)

    def render(self, ex: Example) -> str:
        return self.data.tokenizer.decode(list(ex.inputs) + [int(ex.targets[-1])], skip_special_tokens=False)
