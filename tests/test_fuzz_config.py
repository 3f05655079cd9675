"""Property-based fuzzing of the run and experiment schemas and of the command line.

Whatever a config file or a `--set` holds — random field names, types and values, random YAML text
with anchors, aliases and tags — loading it either gives a valid RunConfig (or experiment) or
raises ConfigError naming the field at fault; never another exception, never a hang. Whatever
arguments any command gets, it exits with a status and a one-line message, never a traceback.

Runs derandomized (the same examples every time, well under 30 s); `LENGTHGEN_FUZZ=explore` draws
fresh examples, many more of them, to hunt for new failures.
"""

import argparse
import contextlib
import io
import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lengthgen.cli import build_parser, main
from lengthgen.config import ConfigError, RunConfig, load_run_config, parse_yaml
from lengthgen.experiments.grid import ensemble_size, expand
from lengthgen.tasks import available_tasks

settings.register_profile("ci", max_examples=150, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("LENGTHGEN_FUZZ", "ci")

BASE = {"task": {"name": "sparse_parity", "params": {"k": [1, 3]}, "train_lengths": [6, 12],
                 "eval_bins": [[6, 12], [13, 20]]},
        "model": {"n_layers": 1, "n_heads": 2, "d_model": 16}, "train": {"steps": 10}}
SECTIONS = {"task": ("name", "params", "train_lengths", "eval_bins"),
            **{name: tuple(RunConfig.model_fields[name].annotation.model_fields) for name in ("model", "train", "eval")},
            "": tuple(f for f in RunConfig.model_fields if f not in ("task", "model", "train", "eval"))}
TASK_PARAMS = ("k", "placement", "window", "n_values", "p")  # some real, some not, across tasks

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.integers(-(2 ** 70), 2 ** 70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.sampled_from(["auto", "cpu", "cuda:0", "rope", "ape", "alibi", "t5", "fire", "nope",
                                     "linear", "random", "uniform", "block", "local:3", "1e-3", "inf", "nan"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=3),
                      max_leaves=10)


@st.composite
def field_paths(draw):
    """A dotted path into a run config: mostly real fields, sometimes a misspelt or invented one."""
    section = draw(st.sampled_from(sorted(SECTIONS)))
    kind = draw(st.sampled_from(["real", "real", "real", "invented"]))
    leaf = draw(st.sampled_from(SECTIONS[section])) if kind == "real" else draw(names.filter(lambda n: "." not in n))
    if section == "task" and leaf == "params" and draw(st.booleans()):
        return f"task.params.{draw(st.sampled_from(TASK_PARAMS))}"
    return f"{section}.{leaf}" if section else leaf


def with_value(base: dict, dotted: str, value) -> dict:
    data = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return data


def assert_names_field(err: ConfigError, dotted: str):
    """The message points at the field: its dotted path, or its section and its own name."""
    text = str(err)
    *parents, leaf = dotted.split(".")
    named = dotted in text or (leaf in text and all(p in text for p in parents))
    if dotted.startswith("task.params.") and not named:  # the task names its parameter itself
        named = leaf in text
    assert named, f"message does not name {dotted!r}:\n{text}"


def loads_or_names(data: dict, dotted: str):
    try:
        cfg = load_run_config(data)
    except ConfigError as err:
        assert_names_field(err, dotted)
    else:
        assert isinstance(cfg.key(), str) and RunConfig.model_validate(cfg.model_dump()) == cfg


@settings(settings.get_profile(PROFILE))
@given(field_paths(), values)
def test_any_value_in_any_field(dotted, value):
    loads_or_names(with_value(BASE, dotted, value), dotted)


@settings(settings.get_profile(PROFILE))
@given(field_paths(), values)
def test_any_value_given_as_yaml_text(dotted, value):
    # What `--set KEY=VALUE` and config files do: the value travels as YAML text.
    text = yaml.safe_dump(with_value(BASE, dotted, value), allow_unicode=True)
    loads_or_names(parse_yaml(text, "fuzz.yaml"), dotted)


@settings(settings.get_profile(PROFILE))
@given(st.sampled_from(available_tasks()), st.dictionaries(st.sampled_from(TASK_PARAMS), values, max_size=2),
       st.lists(st.tuples(st.integers(-2, 60), st.integers(-2, 60)), max_size=3))
def test_any_task_with_any_params_and_bins(name, params, bins):
    data = {"task": {"name": name, "params": params, "eval_bins": [list(b) for b in bins] or None}}
    try:
        load_run_config(data)
    except ConfigError as err:
        assert "task" in str(err)


# --- YAML text: anchors, aliases, tags, garbage -------------------------------------------------

TAGS = ["!!python/object/apply:os.system", "!!python/name:os.system", "!!binary", "!!set", "!!timestamp",
        "!custom", "!", "!!str", "!!int", "!!float", "!!map", "!!seq", "!<tag:example.com,2024:x>"]
TOKENS = ["task:", "model:", "train:", "name:", "sparse_parity", " ", "\n", "  ", "- ", "[", "]", "{", "}", ",", ":",
          "&a ", "&b ", "*a", "*b", "<<: ", "'", '"', "#", "1", "-1", "1e3", ".inf", "true", "~", "|", ">",
          "\t", "---\n", "...\n", "%YAML 1.1\n", "? ", *[t + " " for t in TAGS]]


@settings(settings.get_profile(PROFILE))
@given(st.one_of(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join), st.text(max_size=60)))
def test_random_yaml_text(text):
    try:
        data = parse_yaml(text, "fuzz.yaml")
        if isinstance(data, dict):
            load_run_config(data)
    except ConfigError as err:
        assert str(err).startswith(("fuzz.yaml", "invalid config")), str(err)


@settings(settings.get_profile(PROFILE))
@given(st.integers(2, 12), st.integers(2, 12))
def test_alias_growth_refused_or_small(width, depth):
    # width**depth values from a few hundred bytes: loaded when small, refused fast when not.
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"l{d}: &l{d} [{', '.join([f'*l{d - 1}'] * width)}]" for d in range(1, depth)]
    start = time.perf_counter()
    try:
        data = parse_yaml("\n".join(lines), "fuzz.yaml")
    except ConfigError as err:
        assert "aliases expand" in str(err) and width ** depth > 10_000
    else:
        assert len(data) == depth
    assert time.perf_counter() - start < 1.0


@settings(settings.get_profile(PROFILE))
@given(st.sampled_from(TAGS), values)
def test_tagged_values(tag, value):
    text = f"task: {{name: sparse_parity}}\nseed: {tag} {yaml.safe_dump(value, default_flow_style=True).strip()}\n"
    try:
        data = parse_yaml(text, "fuzz.yaml")
        load_run_config(data)
    except ConfigError as err:
        assert "seed" in str(err) or "fuzz.yaml" in str(err)
    else:
        assert tag in ("!", "!!str", "!!int", "!!float")  # only plain tags get through, to an integer seed


# --- experiments ---------------------------------------------------------------------------------

EXPERIMENT_FIELDS = ("experiment", "description", "base", "runs", "grid", "ensemble", "protocol")


@st.composite
def experiments(draw):
    spec = {"experiment": "fuzz", "base": BASE, "grid": {"seed": [0, 1]}}
    field = draw(st.sampled_from(EXPERIMENT_FIELDS + ("bogus",)))
    if field in ("runs", "grid") and draw(st.booleans()):  # well shaped, with one bad point
        dotted = draw(field_paths())
        spec[field] = [{dotted: draw(values)}] if field == "runs" else {dotted: [draw(values)]}
        return spec, field, dotted
    spec[field] = draw(values)
    return spec, field, None


@settings(settings.get_profile(PROFILE))
@given(experiments())
def test_any_experiment_expands_or_names_the_field(case):
    spec, field, dotted = case
    try:
        configs = expand(spec, "fuzz.yaml")
        ensemble_size(spec, "fuzz.yaml")
    except ConfigError as err:
        text = str(err)
        if dotted is not None:  # a point's own field
            assert dotted.split(".")[-1] in text or field in text, text
        else:  # the experiment's field, or (inside base or a run) the run config's fields, each named
            assert field in text or "invalid config:\n  " in text, text
    else:
        assert configs and all(isinstance(c, RunConfig) for c in configs)


@pytest.mark.parametrize("spec", [{"base": BASE, "runs": [{"name": 5}]}, {"base": BASE, "grid": {5: [1, 2]}}])
def test_non_text_run_names_and_grid_keys(spec):
    with pytest.raises(ConfigError):
        expand(spec, "fuzz.yaml")


# --- the command line ----------------------------------------------------------------------------
# Every command with random flags and values. The root is a file, so whatever passes the checks
# stops where the store opens: nothing trains, and every example takes milliseconds.

def command_flags() -> dict[str, list[str]]:
    """Each command's long options, read from the parser itself (so new flags are fuzzed too)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    # --root stays the test's file: a fuzzed root after the command would be a real folder to train in.
    return {name: [o for a in sub._actions for o in a.option_strings if o.startswith("--") and o not in ("--help",
                                                                                                       "--root")]
            for name, sub in commands.items()}


FLAGS = command_flags()
ARG_VALUES = ["", "0", "-1", "1", "3", "1" * 25, "1e9", "nan", "x", "4-8", "4-8,4-8", "17-30000000", "8-4", "1,2",
              "-1,0", "sparse_parity", "ape", "cuda", "auto", "cpu", "train.steps=1", f"seed={2 ** 63}", "a=b", "=",
              "demo", "out.md", "out.png", "CONFIG"]
arg_values = st.one_of(st.sampled_from(ARG_VALUES), st.text(max_size=8).filter(lambda t: t not in ("lm", "smollm2")))


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(FLAGS)))
    argv = [command]
    if command in ("eval", "run", "predict", "probe") or (command == "tasks" and draw(st.booleans())):
        argv.append(draw(arg_values.filter(lambda v: not v.startswith("-"))))
    for flag in draw(st.lists(st.sampled_from(FLAGS[command]), max_size=4)) if FLAGS[command] else []:
        argv += [flag] if flag in ("--force", "--no-greedy", "--no-report", "--markdown", "--no-control") \
            else [f"{flag}={draw(arg_values)}"]
    return argv


@pytest.fixture(scope="module")
def file_root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    (folder / "root").write_text("a file, not a results folder")
    (folder / "config.yaml").write_text(yaml.safe_dump(BASE))
    return folder


@settings(settings.get_profile(PROFILE))
@given(command_lines())
def test_any_command_line_exits_with_a_message(file_root, argv):
    argv = [a.replace("CONFIG", str(file_root / "config.yaml")) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--root", str(file_root / "root"), *argv])
        except SystemExit as exit_:  # argparse's refusals
            code = exit_.code
    assert code in (0, 1, 2), (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code:
        assert err.getvalue().startswith(("lengthgen: error:", "usage:")), (argv, err.getvalue())
