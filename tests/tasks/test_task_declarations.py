"""What a task declares and what it gets from it: the offset rule it names (positions.OFFSET_RULES),
its evaluation mode (evaluation_modes) and, for tasks that keep derived data, a cache directory."""

import pytest

from lengthgen.config import TaskConfig
from lengthgen.errors import InputError
from lengthgen.evaluation_modes import EVALUATION_MODES, evaluation_mode
from lengthgen.positions import OFFSET_RULES, max_offset
from lengthgen.tasks import Task, UsesCache, available_tasks, make_task, register_task
from lengthgen.tasks.base import TASKS

# positions.max_offset of every built-in task (default parameters, plus the formal languages'
# official offset range, the coupled tasks' sequential positions and the other parameters that
# change a sequence's length), recorded when each task still computed its own range: moving the
# rules into positions.py must leave every offset as it was.
EXPECTED_MAX_OFFSETS = {
    ("aa_star", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("aaaa_star", ()):
        {(4, 50): 46, (28, 50): 22, (48, 50): 2,
         (4, 150): 146, (76, 150): 74, (148, 150): 2},
    ("ab_d_bc", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("abab_star", ()):
        {(4, 50): 46, (28, 50): 22, (48, 50): 2,
         (4, 150): 146, (76, 150): 74, (148, 150): 2},
    ("abcde", ()):
        {(5, 50): 45, (28, 50): 22, (50, 50): 0,
         (5, 150): 145, (78, 150): 72, (150, 150): 0},
    ("addition", ()):
        {(4, 50): 92, (27, 50): 46, (50, 50): 0,
         (4, 150): 292, (77, 150): 146, (150, 150): 0},
    ("anbn", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("anbncn", ()):
        {(3, 50): 47, (27, 50): 23, (48, 50): 2,
         (3, 150): 147, (78, 150): 72, (150, 150): 0},
    ("anbncndn", ()):
        {(4, 50): 46, (28, 50): 22, (48, 50): 2,
         (4, 150): 146, (76, 150): 74, (148, 150): 2},
    ("bin_majority", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("bin_majority_interleave", ()):
        {(3, 50): 47, (27, 50): 23, (48, 50): 2,
         (3, 150): 147, (78, 150): 72, (150, 150): 0},
    ("boolean3", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("boolean5", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("coupled_addition", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("coupled_copy", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("coupled_parity", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("dyck1", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("dyck12", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("dyck2", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("dyck3", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("dyck4", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("index_hints_addition", ()):
        {(1, 50): 294, (26, 50): 144, (50, 50): 0,
         (1, 63): 372, (32, 63): 186, (63, 63): 0},
    ("kgram_lookup", ()):
        {(15, 50): 35, (33, 50): 17, (50, 50): 0,
         (15, 150): 135, (83, 150): 67, (150, 150): 0},
    ("lm", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("majority", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("parity", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("repeat_copy", ()):
        {(1, 50): 98, (26, 50): 48, (50, 50): 0,
         (1, 150): 298, (76, 150): 148, (150, 150): 0},
    ("shuffle2", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("sort", ()):
        {(1, 50): 98, (26, 50): 48, (50, 50): 0,
         (1, 150): 298, (76, 150): 148, (150, 150): 0},
    ("sparse_parity", ()):
        {(4, 50): 46, (27, 50): 23, (50, 50): 0,
         (4, 150): 146, (77, 150): 73, (150, 150): 0},
    ("sparse_parity_scratchpad", ()):
        {(3, 50): 47, (27, 50): 23, (50, 50): 0,
         (3, 150): 147, (77, 150): 73, (150, 150): 0},
    ("sparse_sum", ()):
        {(4, 50): 46, (27, 50): 23, (50, 50): 0,
         (4, 150): 146, (77, 150): 73, (150, 150): 0},
    ("tomita1", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("tomita2", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("tomita3", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("tomita4", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("tomita5", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("tomita6", ()):
        {(2, 50): 48, (26, 50): 24, (50, 50): 0,
         (2, 150): 148, (76, 150): 74, (150, 150): 0},
    ("tomita7", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("unique_copy", ()):
        {(1, 50): 98, (26, 50): 48, (50, 50): 0,
         (1, 150): 298, (76, 150): 148, (150, 150): 0},
    ("var_chain", ()):
        {(3, 50): 188, (27, 50): 92, (50, 50): 0,
         (3, 150): 588, (77, 150): 292, (150, 150): 0},
    ("zot_02", ()):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
    ("aa_star", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("aaaa_star", (("offset_range", "official"),)):
        {(4, 50): 50, (28, 50): 50, (48, 50): 50,
         (4, 150): 150, (76, 150): 150, (148, 150): 150},
    ("ab_d_bc", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("abab_star", (("offset_range", "official"),)):
        {(4, 50): 50, (28, 50): 50, (48, 50): 50,
         (4, 150): 150, (76, 150): 150, (148, 150): 150},
    ("abcde", (("offset_range", "official"),)):
        {(5, 50): 50, (28, 50): 50, (50, 50): 50,
         (5, 150): 150, (78, 150): 150, (150, 150): 150},
    ("anbn", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("anbncn", (("offset_range", "official"),)):
        {(3, 50): 50, (27, 50): 50, (48, 50): 50,
         (3, 150): 150, (78, 150): 150, (150, 150): 150},
    ("anbncndn", (("offset_range", "official"),)):
        {(4, 50): 50, (28, 50): 50, (48, 50): 50,
         (4, 150): 150, (76, 150): 150, (148, 150): 150},
    ("boolean3", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("boolean5", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("dyck1", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("dyck12", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("dyck2", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("dyck3", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("dyck4", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("shuffle2", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita1", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita2", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita3", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita4", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita5", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita6", (("offset_range", "official"),)):
        {(2, 50): 50, (26, 50): 50, (50, 50): 50,
         (2, 150): 150, (76, 150): 150, (150, 150): 150},
    ("tomita7", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("zot_02", (("offset_range", "official"),)):
        {(1, 50): 50, (26, 50): 50, (50, 50): 50,
         (1, 150): 150, (76, 150): 150, (150, 150): 150},
    ("coupled_addition", (("positions", "sequential"),)):
        {(1, 50): 147, (26, 50): 72, (50, 50): 0,
         (1, 150): 447, (76, 150): 222, (150, 150): 0},
    ("coupled_copy", (("positions", "sequential"),)):
        {(1, 50): 98, (26, 50): 48, (50, 50): 0,
         (1, 150): 298, (76, 150): 148, (150, 150): 0},
    ("coupled_parity", (("positions", "sequential"),)):
        {(1, 50): 98, (26, 50): 48, (50, 50): 0,
         (1, 150): 298, (76, 150): 148, (150, 150): 0},
    ("sparse_parity_scratchpad", (("positions", "sequential"),)):
        {(3, 50): 47, (27, 50): 23, (50, 50): 0,
         (3, 150): 147, (77, 150): 73, (150, 150): 0},
    ("var_chain", (("positions", "sequential"),)):
        {(3, 50): 188, (27, 50): 92, (50, 50): 0,
         (3, 150): 588, (77, 150): 292, (150, 150): 0},
    ("addition", (("separator", True),)):
        {(4, 50): 91, (27, 50): 45, (50, 50): 0,
         (4, 150): 291, (77, 150): 145, (150, 150): 0},
    ("bin_majority_interleave", (("answer_sep", True),)):
        {(3, 50): 47, (27, 50): 23, (48, 50): 2,
         (3, 150): 147, (78, 150): 72, (150, 150): 0},
    ("coupled_addition", (("operands", "equal"),)):
        {(1, 50): 49, (26, 50): 24, (50, 50): 0,
         (1, 150): 149, (76, 150): 74, (150, 150): 0},
}


def built_in_tasks() -> list[str]:
    """The registered tasks less those other tests register (plugins)."""
    return [name for name in available_tasks() if TASKS[name].__module__.startswith("lengthgen.tasks.")]


def test_offsets_are_those_the_tasks_computed_themselves():
    assert {name for name, _ in EXPECTED_MAX_OFFSETS} == set(built_in_tasks())
    for (name, params), expected in EXPECTED_MAX_OFFSETS.items():
        task = make_task(name, **dict(params))
        got = {(n, longest): max_offset(task, n, longest) for n, longest in expected}
        assert got == expected, (name, params)


def test_every_declared_offset_rule_is_known():
    for name in built_in_tasks():
        assert make_task(name).offset_rule in OFFSET_RULES, name
    assert make_task("tomita1", offset_range="official").offset_rule == "longest_test_sequence"
    assert make_task("var_chain", positions="sequential").offset_rule == "longest_sequence"


def test_unknown_offset_rule_names_the_rules():
    task = make_task("parity")
    task.offset_rule = "far"
    with pytest.raises(InputError, match="unknown offset rule 'far'.*longest_sequence, input_gap"):
        max_offset(task, 3, 10)


def test_evaluation_modes_give_the_reported_metric():
    assert evaluation_mode(make_task("parity").evaluation).reported_metric(greedy=True) == "exact_match_greedy"
    assert evaluation_mode(make_task("parity").evaluation).reported_metric(greedy=False) == "exact_match_tf"
    lm = evaluation_mode(make_task("lm").evaluation)
    assert not lm.per_length_bin and lm.reported_metric(greedy=True) == lm.reported_metric(greedy=False) == "loss"
    assert set(EVALUATION_MODES) == {"length_bins", "context_buckets"}


def test_unknown_evaluation_mode_fails_at_registration():
    class Scored(Task):
        name = "scored_by_vibes"
        evaluation = "vibes"

        def sample(self, rng, length, **overrides):
            raise NotImplementedError

        def seq_len(self, length):
            return length

    with pytest.raises(InputError, match="scored_by_vibes.*'vibes'.*length_bins, context_buckets"):
        register_task(Scored)
    assert "scored_by_vibes" not in available_tasks()


def test_only_tasks_that_keep_derived_data_get_a_cache_dir(tmp_path):
    assert [name for name in built_in_tasks() if isinstance(make_task(name), UsesCache)] == ["lm"]
    assert TaskConfig(name="lm").build(tmp_path).cache_dir == tmp_path
    assert TaskConfig(name="lm").build().cache_dir is None
    assert TaskConfig(name="parity").build(tmp_path).params() == {}
