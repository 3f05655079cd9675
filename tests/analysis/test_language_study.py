"""The natural-language study: the standard-library corpus, the probe's kept context and stitched
control on an oracle that copies from distant context, the gate, the pooled statistic R and its
interval on cases with a known answer, and the whole study through `lengthgen run` and `report`."""

import math
import sys

import numpy as np
import pytest
import yaml

from lengthgen.analysis.probe import Scorer
from lengthgen.analysis.text import (Gate, TextProbeSettings, Verdict, gate_numbers, kept_context, pooled_recovery,
                                     probe_text, scheme_verdict, stitched, study_verdict)
from lengthgen.cli import main as cli_main
from lengthgen.store import ResultsStore
from lengthgen.tasks.base import SPECIALS
from lengthgen.text.corpus import corpus_fingerprint, load_documents, read_stdlib, split_documents, stdlib_files
from lengthgen.text.tokenized import tokenized_corpus

from fakes import fake_documents

# -- the standard-library corpus ------------------------------------------------------------------


def fake_library(root):
    files = {"os.py": "import sys\n", "json/__init__.py": "x = 1\n", "json/decoder.py": "y = 2\n",
             "test/test_os.py": "assert 1\n", "json/tests/test_a.py": "assert 2\n",
             "idlelib/idle_test/t.py": "assert 3\n", "site-packages/pkg/mod.py": "z = 3\n",
             "unittest/test_case_helpers.py": "w = 4\n", "notes.txt": "not code\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_stdlib_files_leave_out_tests_and_installed_packages(tmp_path):
    root = fake_library(tmp_path)
    assert [str(p.relative_to(root)) for p in stdlib_files(root)] == ["json/__init__.py", "json/decoder.py", "os.py"]
    docs = read_stdlib(root)
    assert [d.id for d in docs] == ["json/__init__.py", "json/decoder.py", "os.py"]  # one document per file
    assert docs[2].text == "import sys\n"


def test_the_running_interpreters_library_is_the_corpus():
    docs = load_documents("stdlib")
    ids = [d.id for d in docs]
    assert len(docs) > 300 and "os.py" in ids and "json/decoder.py" in ids
    assert all(i.endswith(".py") for i in ids)
    assert not any({"test", "tests", "site-packages"} & set(i.split("/")[:-1]) or i.split("/")[-1].startswith("test_")
                   for i in ids)
    fingerprint = corpus_fingerprint("stdlib", docs)
    assert fingerprint["python"] == ".".join(map(str, sys.version_info[:3])) and fingerprint["documents"] == len(docs)


def test_stdlib_cache_is_keyed_by_content_and_records_the_source(tmp_path):
    root = fake_library(tmp_path / "lib")
    for i, text in enumerate(fake_documents(8)):
        (root / f"m{i}.py").write_text(text)
    docs = read_stdlib(root)
    train, valid = split_documents(docs, 0.25)
    source = corpus_fingerprint("stdlib", docs)
    first = tokenized_corpus(train, valid, 300, 2, SPECIALS, tmp_path / "cache", source)
    again = tokenized_corpus(train, valid, 300, 2, SPECIALS, tmp_path / "cache", source)
    assert again.from_cache and again.key == first.key and again.source == source
    (root / "m0.py").write_text((root / "m0.py").read_text() + " war")
    edited = read_stdlib(root)
    changed = tokenized_corpus(*split_documents(edited, 0.25), 300, 2, SPECIALS, tmp_path / "cache",
                               corpus_fingerprint("stdlib", edited))
    assert not changed.from_cache and changed.key != first.key
    assert corpus_fingerprint("stdlib", edited)["sha256"] != source["sha256"]


# -- the probe on an oracle that copies from distant context --------------------------------------

class CopyOracle(Scorer):
    """p(target) = 0.9 when the target token occurs anywhere in the context, else 1 / V."""

    def __init__(self, vocab: int = 5000):
        self.vocab = vocab

    def loss(self, ids, target) -> float:
        return -math.log(0.9) if target in set(ids.tolist()) else math.log(self.vocab)

    def losses(self, contexts, targets):
        return np.array([self.loss(ids, y) for (ids, _), y in zip(contexts, targets)])

    def token_losses(self, ids, position_ids):
        return np.array([self.loss(ids[:i + 1], ids[i + 1]) for i in range(len(ids) - 1)])


def copy_documents(n: int, window: int = 128, back: int = 64) -> list[tuple[str, np.ndarray]]:
    """Documents of distinct tokens (disjoint across documents) in which every token from position
    65 of each window on repeats the one `back` tokens earlier (once, beyond the last 32 tokens)."""
    docs = []
    for d in range(n):
        ids = np.arange(d * 10_000, d * 10_000 + 2 * window)
        for start in (0, window):
            for t in range(start + 65, start + window):
                ids[t] = ids[t - back]
        docs.append((f"doc{d}", ids))
    return docs


def test_kept_context_holds_the_first_token_and_the_last_L():
    ids = np.arange(100, 228)
    kept, positions = kept_context(ids, 90, 32)
    assert positions.tolist() == [0, *range(58, 90)] and kept.tolist() == [100, *range(158, 190)]
    donor = np.arange(900, 1028)
    context = stitched(ids, donor, 90, 32)
    assert len(context) == 90 and context[0] == 100 and context[1:58].tolist() == list(range(901, 958))
    assert context[58:].tolist() == list(range(158, 190))  # the kept tokens are the window's own


def test_copying_gain_is_sparse_and_vanishes_when_distant_tokens_come_from_another_document():
    st = TextProbeSettings(window=128, local=32, min_target=65, windows_per_doc=2, positions_per_window=6,
                           max_targets=20, ks=(1, 2, 4, 8))
    targets, screened, windows = probe_text(CopyOracle(), copy_documents(5), st)
    assert len(windows) == 10 and len(screened) == 60
    gain = math.log(5000) + math.log(0.9)
    assert all(r["gain"] == pytest.approx(gain) for r in screened)  # every target is a distant copy
    assert all(r["stitched_gain"] == 0 for r in screened)  # another document holds no copy: no gain
    assert all(r["donor"].split("@")[0] != r["doc"] for r in screened)
    assert len(targets) == 20 and all(r["s"] == 1 and r["t"] - r["first"] == 64 for r in targets)


# -- gate, pooled statistic, verdicts --------------------------------------------------------------

def screened_rows(mean: float, n: int = 1200, docs: int = 60, large: int = 400, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    gains = rng.normal(mean, 0.05, n)
    gains[:large] = 0.6  # the rest around `mean`
    return [{"doc": f"d{i % docs}", "gain": float(g), "stitched_gain": float(rng.normal(0, 0.01))}
            for i, g in enumerate(gains)]


def test_gate_needs_mean_gain_interval_and_large_gains():
    gate = Gate(min_positions=1000, min_mean_gain=0.05, large_gain=0.5, min_large=300)
    passing = gate_numbers(screened_rows(0.02), gate)  # 400 at 0.6 lift the mean to ~0.21
    assert passing["passed"] and passing["large"] == 400 and passing["mean_gain"][1] > 0.05
    assert abs(passing["stitched_gain"][0]) < 0.01
    assert not gate_numbers(screened_rows(0.02, large=299), gate)["passed"]  # too few large gains
    assert not gate_numbers(screened_rows(-0.3, large=300), gate)["passed"]  # mean ~0.0: too small
    assert not gate_numbers(screened_rows(0.02, n=999), gate)["passed"]  # too few positions
    assert study_verdict(gate_numbers(screened_rows(-0.3, large=300), gate), {"rope": "reproduces"}) == \
        "inconclusive: the reference does not use long context"


def scheme_rows(share_sparse: float, share_dense: float, n: int = 240, docs: int = 40, noise: float = 0.0,
                seed: int = 0, share_other: float = 0.5) -> list[dict]:
    """Targets alternately sparse (s = 2), dense (s = None) and in between (s = 8, in neither group);
    a scheme recovers the given share of each one's reference gain (plus noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s = (2, None, 8)[i % 3]
        g = float(rng.uniform(0.5, 1.5))
        share = {2: share_sparse, None: share_dense, 8: share_other}[s]
        rows.append({"doc": f"d{i % docs}", "s": s, "reference_gain": g, "gain": share * g + noise * rng.normal()})
    return rows


def test_pooled_share_is_exact_when_recovery_is_proportional():
    stats = pooled_recovery(scheme_rows(0.8, 0.2))
    assert stats["R_sparse"] == pytest.approx((0.8, 0.8, 0.8)) and stats["R_dense"] == pytest.approx((0.2, 0.2, 0.2))
    assert stats["delta"] == pytest.approx((0.6, 0.6, 0.6)) and stats["n_sparse"] == stats["n_dense"] == 80
    assert stats["documents"] == 40 and 0.2 < stats["R"][0] < 0.8


def test_pooled_interval_covers_the_true_difference_and_drives_the_verdict():
    rule = Verdict(extrapolates=0.1, min_group=50, margin=0.1)
    sparse_wins = pooled_recovery(scheme_rows(0.8, 0.2, noise=0.3))
    lo, hi = sparse_wins["delta"][1:]
    assert lo < 0.6 < hi and lo > 0 and scheme_verdict(sparse_wins, rule) == "reproduces"
    equal = pooled_recovery(scheme_rows(0.5, 0.5, n=600, noise=0.1))
    assert equal["delta"][1] < 0 < equal["delta"][2] and scheme_verdict(equal, rule) == "refutes"
    few = pooled_recovery(scheme_rows(0.5, 0.5, n=120, noise=0.1))  # 40 per group: too few to refute
    assert scheme_verdict(few, rule) == "inconclusive"
    assert scheme_verdict(pooled_recovery(scheme_rows(0.05, 0.05, share_other=0.05)), rule) == "does not extrapolate"
    passed = {"passed": True}
    assert study_verdict(passed, {"rope": "reproduces", "nope": "does not extrapolate"}) == "reproduces"
    assert study_verdict(passed, {"rope": "reproduces", "alibi": "refutes"}).startswith("inconclusive: rope reproduces")
    assert study_verdict(passed, {"nope": "does not extrapolate"}).startswith("inconclusive: no scheme")


# -- the study through the command line -----------------------------------------------------------

def test_study_runs_after_the_experiment_and_the_report_prints_its_verdict(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, text in enumerate(fake_documents(24, words=400, seed=2)):
        (corpus / f"doc{i:02d}.txt").write_text(text)
    spec = {"experiment": "tiny_study",
            "base": {"task": {"name": "lm", "params": {"corpus": str(corpus), "context": 16, "vocab_size": 300,
                                                       "valid_fraction": 0.25},
                              "train_lengths": [16, 16], "eval_bins": [[16, 16], [64, 64]]},
                     "model": {"positional": "rope", "n_layers": 1, "n_heads": 2, "d_model": 32},
                     "train": {"steps": 10, "batch_size": 8, "lr": 3e-3, "eval_every": 1000, "eval_examples": 4,
                               "early_stop_acc": None},
                     "eval": {"examples_per_bin": 2, "batch_size": 2}},
            "runs": [{"name": "reference", "task.train_lengths": [64, 64]}, {"name": "rope"},
                     {"name": "nope", "model.positional": "nope"}],
            "study": {"reference": "reference", "compare": ["rope", "nope"], "documents": 4,
                      "probe": {"window": 64, "local": 16, "min_target": 32, "windows_per_doc": 2,
                                "positions_per_window": 4, "ks": [1, 2, 4], "min_gain": -10.0},
                      "gate": {"min_positions": 1000}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(spec))
    root = str(tmp_path / "runs")
    assert cli_main(["--root", root, "run", str(path), "--no-report"]) in (0, None)
    stored = ResultsStore(root).analysis("tiny_study", "language_probe seed=0")
    assert stored.settings["runs"].keys() == {"reference", "rope", "nope"}
    assert len(stored.result["screened"]) == 4 * 2 * 4 and set(stored.result["schemes"]) == {"rope", "nope"}
    capsys.readouterr()
    assert cli_main(["--root", root, "report", "--experiment", "tiny_study", "--metric", "loss", "--markdown"]) in (0, None)
    out = capsys.readouterr().out
    assert "gate: mean long-context gain g over 32 positions" in out and "**failed**" in out  # 32 < 1,000 positions
    assert "Verdict: inconclusive: the reference does not use long context" in out and "R, all targets" not in out
    spec["study"]["gate"] = {"min_positions": 10, "min_mean_gain": -10.0, "large_gain": -10.0, "min_large": 1}
    path.write_text(yaml.safe_dump(spec))
    assert cli_main(["--root", root, "run", str(path), "--no-report"]) in (0, None)  # new gate: study redone
    store = ResultsStore(root)
    redone = store.analysis("tiny_study", "language_probe seed=0")
    assert redone.settings["gate"]["min_positions"] == 10 and redone.created_at >= stored.created_at
    # A reference that gains from long context everywhere: the gate passes, the table and a verdict follow.
    for row in redone.result["screened"]:
        row["gain"] = 1.0 + 0.01 * row["t"]
    store.put_analysis("tiny_study", "language_probe seed=0", redone.settings, redone.result)
    capsys.readouterr()
    cli_main(["--root", root, "report", "--experiment", "tiny_study", "--metric", "loss", "--markdown"])
    out = capsys.readouterr().out
    assert "**passed**" in out and "| scheme | R, all targets" in out and "Verdict:" in out
    study = out[out.index("| scheme | R, all targets"):]
    assert "\n| rope | " in study and "\n| nope | " in study
    page = tmp_path / "study.html"
    cli_main(["--root", root, "report", "--experiment", "tiny_study", "--metric", "loss", "--out", str(tmp_path / "figs"),
              "--formats", "png,svg", "--html", str(page)])
    text = page.read_text()
    assert "| scheme | R, all targets" in text and "data:image/png;base64," in text
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {"tiny_study_loss_by_position.png",
                                                              "tiny_study_loss_by_position.svg"}
    # The preset's results page: one file named after it, with the commands, the study and the machines.
    assert cli_main(["--root", root, "report", "--preset", str(path), "--markdown", "--out", str(tmp_path / "page")]) == 0
    page = (tmp_path / "page" / "study.md").read_text()
    assert page.startswith("# lengthgen report: tiny_study, loss\n") and f"{root} run {path}\n" in page
    assert "### machines the runs trained on" in page and "Verdict:" in page
    assert page.endswith("![study_by_position](study_by_position.png)\n")


def test_a_bad_study_section_fails_before_training(tmp_path, capsys):
    spec = {"experiment": "bad", "base": {"task": {"name": "lm", "params": {"corpus": "sotu", "context": 16}}},
            "runs": [{"name": "reference", "task.train_lengths": [64, 64]}, {"name": "rope"}],
            "study": {"reference": "reference", "compare": ["rope", "alibi"]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert cli_main(["--root", str(tmp_path / "runs"), "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "study names runs ['alibi']" in err and "runs: ['reference', 'rope']" in err
    spec["study"] = {"reference": "reference", "compare": ["rope"], "probe": {"window": 16, "local": 32}}
    path.write_text(yaml.safe_dump(spec))
    assert cli_main(["--root", str(tmp_path / "runs"), "run", str(path)]) == 2
    assert "study.probe: text probe: need 0 < local (32)" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "models").exists()
