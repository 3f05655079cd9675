"""Results pages are generated, not copied: run on a small committed store, the page generator
writes exactly the committed page, byte for byte."""

import shutil
from pathlib import Path

from lengthgen.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "results_page"
# The command the committed page names, run in DATA: the store is DATA/store, the page DATA/tiny.md.
COMMAND = ["--root", "store", "report", "--preset", "tiny.yaml", "--markdown", "--out", "."]


def test_the_page_generator_reproduces_the_committed_page(tmp_path, monkeypatch):
    shutil.copytree(DATA / "store", tmp_path / "store")
    shutil.copy(DATA / "tiny.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(COMMAND) == 0
    committed = (DATA / "tiny.md").read_text()
    assert f"lengthgen {' '.join(COMMAND)}\n" in committed
    assert (tmp_path / "tiny.md").read_bytes() == (DATA / "tiny.md").read_bytes(), (
        f"the results page changed; if that is meant, run `lengthgen {' '.join(COMMAND)}` in {DATA} and commit "
        "tiny.md and its figures")
