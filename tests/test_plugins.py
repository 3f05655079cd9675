"""A user's tasks and schemes: `--import MODULE`, entry points, registering a definition again; and
`lengthgen.load` answering task strings as evaluation's own decoding does."""

import os
import sys

import numpy as np
import pytest
import torch
import yaml

import lengthgen
from lengthgen import plugins
from lengthgen.cli import main
from lengthgen.data import collate
from lengthgen.evaluate import greedy_predictions
from lengthgen.model import positional
from lengthgen.store import ResultsStore
from lengthgen.tasks import Task, base, register_task

ECHO = '''
from lengthgen.tasks import BOS, EOS, SEP, Task, Vocab, register_task, sequence_example


class Echo(Task):
    summary = "copy the input"
    format = "<bos> x1 ... xn <sep> x1 ... xn <eos> over {a, b}"
    default_train_lengths = (2, 4)
    default_eval_bins = ((2, 4), (5, 8))

    def __init__(self):
        self.vocab = Vocab(["a", "b"])

    def sample(self, rng, length, **overrides):
        x = list(self.vocab.encode(rng.choice(["a", "b"], length)))
        return sequence_example([BOS, *x, SEP, *x, EOS], answer_start=length + 1, length=length)

    def seq_len(self, length):
        return 2 * length + 2


@register_task
class EchoPlugin(Echo):
    name = "echo_plugin"


class EchoEntry(Echo):
    name = "echo_entry"
'''
TINY = ["--steps", "5", "--set", "model.n_layers=1", "--set", "model.n_heads=1", "--set", "model.d_model=16",
        "--set", "eval.examples_per_bin=8", "--set", "train.batch_size=8"]


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """A user's module folder on the path; the registries and LENGTHGEN_IMPORT restored afterwards."""
    (tmp_path / "my_tasks.py").write_text(ECHO)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.ENV, raising=False)
    monkeypatch.delitem(sys.modules, "my_tasks", raising=False)  # imported afresh: it registers again
    monkeypatch.setattr(base, "TASKS", dict(base.TASKS))
    monkeypatch.setattr(positional, "SCHEMES", dict(positional.SCHEMES))
    return tmp_path


def test_import_option_registers_a_task_that_trains_and_loads(user_modules, capsys):
    root = str(user_modules / "runs")
    code = main(["--import", "my_tasks", "train", "--task", "echo_plugin", "--root", root, *TINY])
    out = capsys.readouterr().out
    assert code == 0 and "finished" in out
    assert os.environ[plugins.ENV] == "my_tasks"  # what a sweep's fresh worker processes import
    (run,) = ResultsStore(root).runs()
    model = lengthgen.load(run.key[:6], root=root)
    answer = model.generate("a b b", max_new_tokens=4).split()  # 5 steps of training: any symbols, but symbols
    assert len(answer) <= 4 and "<eos>" not in answer and all(s in model.vocab.stoi for s in answer)


@pytest.mark.slow
def test_a_local_sweeps_workers_import_the_module_too(user_modules, capsys):
    (user_modules / "exp.yaml").write_text(yaml.safe_dump({
        "experiment": "echo", "grid": {"seed": [0, 1]},
        "base": {"task": {"name": "echo_plugin"}, "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
                 "train": {"steps": 5, "batch_size": 8}, "eval": {"examples_per_bin": 8}}}))
    code = main(["--import", "my_tasks", "run", str(user_modules / "exp.yaml"), "--root", str(user_modules / "runs"),
                 "--executor", "local", "--workers", "2", "--threads", "1", "--no-report"])
    assert code == 0, capsys.readouterr().err
    assert [r.status for r in ResultsStore(user_modules / "runs").runs()] == ["finished", "finished"]


def test_an_unknown_module_or_task_exits_2(user_modules, capsys):
    assert main(["train", "--import", "no_such_module", "--task", "echo_plugin"]) == 2
    assert "--import no_such_module: no module 'no_such_module'" in capsys.readouterr().err
    assert main(["tasks", "echo_plugin"]) == 2  # not imported: not registered
    assert "unknown task 'echo_plugin'" in capsys.readouterr().err


def test_entry_points_register_tasks_and_schemes(user_modules, capsys):
    info = user_modules / "my_tasks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-tasks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lengthgen.tasks]\necho_entry = my_tasks:EchoEntry\n\n"
                                           "[lengthgen.schemes]\nmy_nope = lengthgen.model.positional:NoPE\n")
    assert main(["tasks", "echo_entry"]) == 0
    assert "echo_entry: copy the input" in capsys.readouterr().out
    assert positional.SCHEMES["my_nope"].__name__ == "NoPE"


def _first():
    class Twice(Task):
        name = "twice"
    return Twice


def _other():
    class Twice(Task):  # the same name, another definition (another qualified name)
        name = "twice"
    return Twice


def test_the_same_definition_again_replaces_another_is_refused(user_modules):
    register_task(_first())
    again = _first()  # a notebook cell run twice: a new class, the same definition
    assert register_task(again) is again and base.TASKS["twice"] is again
    with pytest.raises(ValueError, match="task 'twice' is already registered by .*choose another name"):
        register_task(_other())
    positional.register_scheme("my_scheme")(_first())
    positional.register_scheme("my_scheme")(_first())
    with pytest.raises(ValueError, match="positional scheme 'my_scheme' is already registered"):
        positional.register_scheme("my_scheme")(_other())


def test_generate_and_predict_agree_with_evaluation(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["train", "--task", "sort", "--root", root, "--set", "task.train_lengths=[2,5]", "--bins", "2-5",
                 *TINY]) == 0
    assert main(["train", "--task", "tomita4", "--root", root, "--set", "task.train_lengths=[2,8]", "--bins", "2-8",
                 *TINY]) == 0
    capsys.readouterr()
    sort_key, tomita_key = (r.key for r in sorted(ResultsStore(root).runs(), key=lambda r: r.task))
    model = lengthgen.load(sort_key, root=root)
    examples = [model.task.sample(np.random.default_rng(i), 4) for i in range(6)]
    batch = collate(examples)
    decoded = greedy_predictions(model.module, batch)
    for ex, row in zip(examples, decoded):
        prompt = " ".join(model.vocab.decode(ex.inputs[1:ex.answer_start]))  # without <bos> and <sep>
        expected = model.vocab.decode(row[ex.answer_start:len(ex.inputs)].tolist())
        expected = expected[:expected.index("<eos>")] if "<eos>" in expected else expected
        assert model.generate(prompt, max_new_tokens=len(expected) + 1).split()[:len(expected)] == expected
    labeller = lengthgen.load(tomita_key, root=root)
    ex = labeller.task.sample(np.random.default_rng(0), 6)
    with torch.no_grad():
        argmax = labeller.module(torch.from_numpy(ex.inputs)[None]).logits[0].argmax(-1)
    text = " ".join(labeller.vocab.decode(ex.inputs[1:]))
    assert labeller.predict(text) == labeller.vocab.decode(argmax[1:].tolist())
    with pytest.raises(ValueError, match="use predict"):
        labeller.generate(text)
    with pytest.raises(ValueError, match="unknown symbol"):
        labeller.predict("1 0 x")
