"""Hardening of the config layer: hostile or malformed YAML and loose values are a
ConfigError naming the field, never a traceback, a hang or a silently changed value."""

import os
import time

import pytest

from lengthgen.cli import _parse_set
from lengthgen.config import ConfigError, load_run_config, parse_yaml, read_yaml
from lengthgen.model.positional import make_scheme

TASK = {"name": "sparse_parity"}

# 9 levels of 9 aliases each: 9**9 (about 387 million) strings once expanded, from under 600 bytes.
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + k)}: &{chr(98 + k)} [{', '.join(['*' + chr(97 + k)] * 9)}]\n" for k in range(8))


def config_error(data) -> str:
    with pytest.raises(ConfigError) as info:
        load_run_config(data)
    return str(info.value)


# --- item 6: alias bombs and tags ----------------------------------------------------------------

def test_alias_bomb_refused_fast():
    assert len(BILLION_LAUGHS) < 600
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand"):
        parse_yaml(BILLION_LAUGHS, "bomb.yaml")
    assert time.perf_counter() - start < 1.0


def test_modest_aliases_and_merge_keys_still_load():
    text = "base: &b {lr: 0.001, steps: 5}\ntrain: {<<: *b, steps: 7}\nagain: *b\n"
    assert parse_yaml(text, "ok.yaml") == {"base": {"lr": 0.001, "steps": 5}, "train": {"lr": 0.001, "steps": 7},
                                           "again": {"lr": 0.001, "steps": 5}}


def test_recursive_alias_refused():
    with pytest.raises(ConfigError, match="refers to itself"):
        parse_yaml("a: &a [1, *a]\n", "loop.yaml")


@pytest.mark.parametrize("text", ["x: !!python/object/apply:os.system [echo hi]\n", "x: !custom 5\n",
                                  "x: !!binary aGk=\n", "!!python/name:os.system\n"])
def test_tags_refused_with_a_message(text):
    with pytest.raises(ConfigError, match="tag"):
        parse_yaml(text, "tagged.yaml")


def test_standard_scalar_tags_and_safe_load_values_kept():
    assert parse_yaml("a: !!str 5\nb: !!int '7'\nc: 1.0e-3\nd: 1e-3\ne: ~\n", "t.yaml") == \
        {"a": "5", "b": 7, "c": 1e-3, "d": "1e-3", "e": None}


def test_set_values_use_the_safe_reader():
    assert _parse_set(["train.lr=0.5", "task.params.k=[1, 4]"]) == {"train.lr": 0.5, "task.params.k": [1, 4]}
    with pytest.raises(ConfigError, match="--set train.lr.*tag"):
        _parse_set(["train.lr=!!python/object/apply:os.system [true]"])
    with pytest.raises(ConfigError, match="--set x"):
        _parse_set(["x=[1, 2"])


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ConfigError, match="deep"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")


# --- item 7: unreadable inputs --------------------------------------------------------------------

def test_malformed_yaml_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: {name: sparse_parity\ntrain: [\n")
    with pytest.raises(ConfigError, match=r"(?s)bad.yaml: not valid YAML.*line 2"):
        read_yaml(path)


def test_folder_unreadable_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        read_yaml(tmp_path)
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"\x80\x02\xff\xfe" * 10)
    with pytest.raises(ConfigError, match="model.pt: not a text"):
        read_yaml(binary)
    locked = tmp_path / "locked.yaml"
    locked.write_text("task: {name: sparse_parity}\n")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: nothing to test
        return
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(locked)


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_yaml(path)


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:-1", "cpu:0x", "", "CUDA"])
def test_unknown_device_refused(device):
    err = config_error({"task": TASK, "device": device})
    assert "device" in err and "auto, cpu, cuda, cuda:N, mps" in err


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_known_devices_accepted(device):
    assert load_run_config({"task": TASK, "device": device}).device == device


@pytest.mark.parametrize("d_mlp", [0, -4])
def test_nonpositive_d_mlp_refused(d_mlp):
    assert "model.d_mlp" in config_error({"task": TASK, "model": {"d_mlp": d_mlp}})


# --- item 4: duplicate evaluation bins -------------------------------------------------------------

def test_duplicate_eval_bins_refused():
    err = config_error({"task": {**TASK, "eval_bins": [[5, 10], [11, 20], [5, 10]]}})
    assert "task.eval_bins" in err and "[5, 10]" in err and "twice" in err


# --- item 9: loose values ---------------------------------------------------------------------------

@pytest.mark.parametrize("section,field", [("train", "steps"), ("train", "batch_size"), ("", "seed"),
                                           ("model", "d_model"), ("model", "max_positions"),
                                           ("eval", "examples_per_bin"), ("train", "lr")])
def test_booleans_are_not_numbers(section, field):
    data = {"task": TASK, section: {field: True}} if section else {"task": TASK, field: True}
    err = config_error(data)
    assert f"{section + '.' if section else ''}{field}" in err and "boolean" in err


def test_booleans_are_not_numbers_inside_bins():
    assert "task.eval_bins.0.0" in config_error({"task": {**TASK, "eval_bins": [[True, 10]]}})


@pytest.mark.parametrize("field", ["lr", "weight_decay", "positional_reg", "position_loss_weight", "grad_clip"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), "inf", "-.inf", ".nan"])
def test_non_finite_floats_refused(field, value):
    assert f"train.{field}" in config_error({"task": TASK, "train": {field: value}})


def test_non_finite_betas_refused():
    assert "train.betas.1" in config_error({"task": TASK, "train": {"betas": [0.9, float("inf")]}})


def test_max_positions_zero_refused():
    assert "model.max_positions" in config_error({"task": TASK, "model": {"max_positions": 0}})
    assert load_run_config({"task": TASK, "model": {"max_positions": None}}).model.max_positions is None


def test_seed_fits_the_generators():
    assert "seed" in config_error({"task": TASK, "seed": 2 ** 64})


@pytest.mark.parametrize("scheme", ["rope", "sinusoidal"])
@pytest.mark.parametrize("base", [-10000.0, 0, 1, float("inf"), float("nan"), True, "big"])
def test_bad_frequency_base_refused(scheme, base):
    with pytest.raises(ValueError, match=f"{scheme}: base"):
        make_scheme(scheme, 16, 2, 32, base=base)
    err = config_error({"task": TASK, "model": {"positional": scheme, "positional_params": {"base": base}}})
    assert "model: positional" in err and "positional_params" in err and "base" in err


def test_positional_params_checked_with_the_config():
    err = config_error({"task": TASK, "model": {"positional": "rope", "positional_params": {"bsae": 500}}})
    assert "model: positional" in err and "positional_params" in err and "bsae" in err
    err = config_error({"task": TASK, "model": {"positional": "t5", "positional_params": {"num_buckets": "many"}}})
    assert "model: positional" in err and "positional_params" in err and "num_buckets" in err
    cfg = load_run_config({"task": TASK, "model": {"positional": "rope", "positional_params": {"base": 500.0}}})
    assert cfg.model.positional_params == {"base": 500.0}


def test_task_params_of_the_wrong_type_name_the_field():
    err = config_error({"task": {**TASK, "params": {"k": {"a": 1}}}})
    assert "task" in err and "k" in err


# --- found by the fuzz test (tests/test_fuzz_config.py) ------------------------------------------

def test_task_params_that_trip_the_task_name_the_params():
    err = config_error({"task": {**TASK, "params": {"placement": None}}})  # was AttributeError
    assert "task: params" in err and "placement" in err
    assert "task: params" in config_error({"task": {**TASK, "params": {"bogus": 1}}})
    assert "task: name: unknown task" in config_error({"task": {"name": ""}})


@pytest.mark.parametrize("text,message", [("\x1f", "not valid YAML"), ("!!int ''\n", "'' is not a valid !!int"),
                                          ("a: !!int\n", "is not a valid !!int"),
                                          ("d: 2024-13-45\n", "'2024-13-45' is not a valid !!timestamp"),
                                          ("a: !!bool maybe\n", "'maybe' is not a valid !!bool")])
def test_values_pyyaml_cannot_build_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_yaml(text, "f.yaml")


def test_experiment_base_and_keys_must_be_mappings_and_names():
    from lengthgen.experiments.grid import expand

    with pytest.raises(ConfigError, match="base config must be a mapping"):
        expand({"base": None}, "e.yaml")  # was TypeError
    with pytest.raises(ConfigError, match="config keys are field names"):
        expand({"base": {"task": TASK}, "runs": [{5: 1}]}, "e.yaml")  # was AttributeError


@pytest.mark.parametrize("field,value", [("d_model", 10 ** 12), ("n_layers", 10 ** 6), ("d_mlp", 10 ** 9),
                                         ("max_positions", 10 ** 12)])
def test_absurd_sizes_refused_before_any_allocation(field, value):
    assert f"model.{field}" in config_error({"task": TASK, "model": {field: value}})


def test_attention_scale_is_checked_and_its_default_keeps_run_keys():
    assert "log_length" in config_error({"task": TASK, "model": {"attention_scale": "ssmax"}})
    plain = load_run_config({"task": TASK})
    explicit = load_run_config({"task": TASK, "model": {"attention_scale": "none"}})
    scaled = load_run_config({"task": TASK, "model": {"attention_scale": "log_length"}})
    assert plain.key() == explicit.key() != scaled.key()


def test_reported_metric_follows_greedy_decoding():
    """`lengthgen run` reports what the runs stored: no greedy results exist with eval.greedy off."""
    from lengthgen.config import RunConfig

    greedy = RunConfig.model_validate({"task": {"name": "sort"}})
    forced = RunConfig.model_validate({"task": {"name": "sort"}, "eval": {"greedy": False}})
    language = RunConfig.model_validate({"task": {"name": "lm"}, "eval": {"greedy": False}})
    assert greedy.reported_metric() == "exact_match_greedy"
    assert forced.reported_metric() == "exact_match_tf"
    assert language.reported_metric() == "loss"
