"""A corpus as token arrays: a byte-level BPE tokenizer (Hugging Face `tokenizers`) trained on the
training split only, and both splits encoded with it, cached on disk.

Layout: the training split is one stream, each document `<bos>` + its tokens, documents in source
order; training windows are contiguous slices of it (they may cross a document boundary, where
the model sees `<bos>`, as in nanoGPT). Validation documents are kept apart, each `<bos>` + its
tokens, so that evaluation can take long windows inside one held-out document.

Cache: `<cache_dir>/lm_corpus/<key>/`, where the key hashes everything the arrays depend on: the
SHA-256 of every document on each side of the split (so any edit to the corpus, or another split,
gives a new key), the vocabulary size, the minimum pair frequency and the special tokens. A
directory appears atomically (written aside, then renamed), so concurrent runs can share it.
Without a cache directory the tokenizer is trained in memory (same result, no reuse).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .corpus import Document

FORMAT = 1  # bump when the layout or the tokenizer recipe changes: old caches are then ignored


@dataclass
class TokenizedCorpus:
    key: str
    tokenizer: object  # tokenizers.Tokenizer
    train: np.ndarray  # the training stream (uint16 or int32)
    valid: np.ndarray  # validation documents, concatenated
    valid_offsets: np.ndarray  # document i is valid[valid_offsets[i]:valid_offsets[i + 1]]
    valid_ids: list[str]
    source: dict  # `corpus_fingerprint`: which corpus (and Python, for stdlib) the arrays came from
    from_cache: bool = False

    def valid_document(self, i: int) -> np.ndarray:
        return self.valid[self.valid_offsets[i]:self.valid_offsets[i + 1]]

    def itos(self) -> list[str]:
        vocab = self.tokenizer.get_vocab()
        return sorted(vocab, key=vocab.get)


def cache_key(train: list[Document], valid: list[Document], vocab_size: int, min_frequency: int,
              specials: tuple[str, ...]) -> str:
    blob = json.dumps({"format": FORMAT, "train": [d.sha for d in train], "valid": [d.sha for d in valid],
                       "vocab_size": vocab_size, "min_frequency": min_frequency, "specials": list(specials)})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_tokenizer(docs: list[Document], vocab_size: int, min_frequency: int, specials: tuple[str, ...]):
    """Byte-level BPE (GPT-2's pre-tokenizer); the specials get ids 0.. in the order given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(specials):
        raise InputError(f"lm: vocab_size must be >= {256 + len(specials)} (256 bytes + special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([d.text for d in docs], trainer=trainer, length=len(docs))
    return tok


def encode_documents(tok, docs: list[Document], bos: int) -> tuple[np.ndarray, np.ndarray]:
    """(concatenated `<bos>` + tokens of each document, offsets [n + 1])."""
    dtype = np.uint16 if tok.get_vocab_size() <= np.iinfo(np.uint16).max else np.int32
    encoded = [np.asarray([bos] + e.ids, dtype=dtype) for e in tok.encode_batch([d.text for d in docs])]
    offsets = np.cumsum([0] + [len(e) for e in encoded])
    return (np.concatenate(encoded) if encoded else np.zeros(0, dtype)), offsets


def build(train: list[Document], valid: list[Document], vocab_size: int, min_frequency: int,
          specials: tuple[str, ...], key: str, source: dict) -> TokenizedCorpus:
    tok = train_tokenizer(train, vocab_size, min_frequency, specials)
    bos = tok.token_to_id(specials[1])
    stream, _ = encode_documents(tok, train, bos)
    valid_tokens, offsets = encode_documents(tok, valid, bos)
    return TokenizedCorpus(key, tok, stream, valid_tokens, offsets, [d.id for d in valid], source)


def save(corpus: TokenizedCorpus, final: Path) -> None:
    tmp = final.parent / f".{final.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    corpus.tokenizer.save(str(tmp / "tokenizer.json"))
    for name in ("train", "valid", "valid_offsets"):
        np.save(tmp / f"{name}.npy", getattr(corpus, name))
    (tmp / "meta.json").write_text(json.dumps({"valid_ids": corpus.valid_ids, "source": corpus.source}))
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished the same key first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def load(final: Path, key: str) -> TokenizedCorpus:
    from tokenizers import Tokenizer

    arrays = {name: np.load(final / f"{name}.npy", allow_pickle=False) for name in ("train", "valid", "valid_offsets")}
    meta = json.loads((final / "meta.json").read_text())
    return TokenizedCorpus(key, Tokenizer.from_file(str(final / "tokenizer.json")), arrays["train"], arrays["valid"],
                           arrays["valid_offsets"], meta["valid_ids"], meta.get("source", {}), from_cache=True)


def tokenized_corpus(train: list[Document], valid: list[Document], vocab_size: int, min_frequency: int,
                     specials: tuple[str, ...], cache_dir: Path | None = None, source: dict | None = None
                     ) -> TokenizedCorpus:
    """The corpus as token arrays, from the cache when it holds this key, else built (and cached).
    source: what the documents are (`corpus_fingerprint`), kept with the arrays."""
    key = cache_key(train, valid, vocab_size, min_frequency, specials)
    if cache_dir is None:
        return build(train, valid, vocab_size, min_frequency, specials, key, source or {})
    final = Path(cache_dir) / "lm_corpus" / key
    if final.is_dir():
        return load(final, key)
    corpus = build(train, valid, vocab_size, min_frequency, specials, key, source or {})
    save(corpus, final)
    return corpus
