"""`report --html`: one self-contained page (tables, verdicts, figures as base64 data URIs, the
commands that regenerate it, the machines), and a real browser (headless chromium) renders its
tables and decodes its images."""

import json
import re
import shutil
import socket
import subprocess

import pytest

from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

TINY = {"experiment": "sparse", "task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 8],
                                         "eval_bins": [[4, 8], [9, 16]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
        "train": {"steps": 10, "batch_size": 8, "eval_every": 5, "early_stop_acc": None},
        "eval": {"examples_per_bin": 10}}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Injected into a copy of the page (the page itself has no script): after load, write what the
# browser made of it into the DOM, which --dump-dom then prints.
PROBE = """<script>
const errors = [];
addEventListener("error", e => errors.push(String(e.message || e.target.outerHTML.slice(0, 80))), true);
addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width]),
    tables: document.querySelectorAll("table").length, cells: document.querySelectorAll("td").length, errors});
  document.body.append(out);
});
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        train_run(load_run_config(TINY | {"name": f"K2 seed={seed}", "seed": seed}), ResultsStore(root))
    path = root / "report.html"
    assert main(["--root", str(root), "report", "--experiment", "sparse", "--html", str(path), "--out",
                 str(root / "plots")]) == 0
    return path


def test_the_page_holds_everything_and_needs_nothing_else(page):
    text = page.read_text()
    captions = re.findall(r"<caption>([^<]+)</caption>", text)
    assert captions[0] == "exact_match_greedy per length bin" and "machines the runs trained on" in captions
    assert any(c.startswith("the sparsity claim") for c in captions) and "falls with k" in text  # the verdict column
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', text)
    assert images == ["exact_match_greedy per k and length bin, one panel per configuration", "training curves"]
    assert f"lengthgen --root {page.parent} report --experiment sparse --html {page}" in text
    assert socket.gethostname() in text and "<dt>torch</dt>" in text
    assert not re.search(r'(src|href)="(?!data:)', text) and "<script" not in text  # no file, link or script


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_a_browser_renders_the_tables_and_images(page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                           "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not load: {done.stderr[-2000:]}"
    seen = json.loads(found[1].replace("&quot;", '"'))
    assert seen["errors"] == []
    assert seen["tables"] == page.read_text().count("<table>") >= 4 and seen["cells"] > 20
    assert len(seen["images"]) == 2
    assert all(complete and natural > 300 and shown > 100 for complete, natural, shown in seen["images"])
