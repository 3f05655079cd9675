"""Huang et al.'s (2025) published accuracies, for `report` to judge beside ours with the same rule.

Exact match in %, in-distribution / first test bin / longest test bin, as
lacoco-lab/length_generalization @ b39b743 holds them (docs/published_numbers.md gives the files and
how they were read). Algorithmic suite: the 5-seed means of
`algorithmic/lm-out-new-multi-run/<task>-average*.txt` (seeds perfect in distribution; the "big"
GPT-2 cells count every seed), bins [0,50] / [51,100] / [101,150]. Formal languages: the plot data
of their Figure 1, `formal_lang_suite/visualise/data_local.py` (one number per cell; their bins
differ by language, e.g. Tomita [1,100] -> [101,150], D-3 -> [120,300]; the counter languages are in
that file but in no figure). Keys are (task, scheme) with the scheme as `predictions.scheme_label`
writes it: "ape", "ape+reg 0.0001" (their regulariser weight; algorithmic also 0.001), "nope".
"""

from __future__ import annotations

ALGORITHMIC_SOURCE = "lacoco-lab/length_generalization algorithmic/lm-out-new-multi-run/<task>-average*.txt"
FORMAL_SOURCE = "lacoco-lab/length_generalization formal_lang_suite/visualise/data_local.py (Figure 1)"

ALGORITHMIC = {
    "bin_majority": {"ape": (100.00, 99.99, 99.96), "ape+reg 0.0001": (100.00, 99.97, 99.90),
                     "ape+reg 0.001": (100.0, 100.0, 100.0), "nope": (100.0, 100.0, 100.0)},
    "majority": {"ape": (100.00, 99.62, 97.81), "ape+reg 0.0001": (100.00, 99.93, 98.99),
                 "ape+reg 0.001": (100.00, 99.92, 98.95), "nope": (100.00, 99.86, 98.46)},
    "bin_majority_interleave": {"ape": (100.00, 96.75, 84.70), "ape+reg 0.0001": (100.00, 97.31, 86.20),
                                "nope": (96.16, 68.81, 39.47)},
    "unique_copy": {"ape": (100.00, 99.86, 98.74), "ape+reg 0.0001": (100.00, 99.79, 99.33),
                    "ape+reg 0.001": (99.82, 98.80, 96.91), "nope": (100.00, 18.00, 0.00)},
    "repeat_copy": {"ape": (100.00, 25.55, 0.00), "ape+reg 0.0001": (100.00, 25.10, 0.00),
                    "ape+reg 0.001": (100.00, 28.43, 0.00), "nope": (100.00, 28.01, 0.00)},
    "sort": {"ape": (100.00, 99.96, 99.37), "ape+reg 0.0001": (100.00, 99.99, 99.56),
             "ape+reg 0.001": (100.00, 99.98, 99.95), "nope": (100.00, 99.81, 80.60)},
    "parity": {"ape": (100.00, 82.95, 62.06), "ape+reg 0.0001": (100.00, 83.40, 64.16),
               "nope": (97.52, 74.50, 63.30)},
    "addition": {"ape": (99.74, 26.78, 0.00), "ape+reg 0.0001": (99.78, 25.82, 0.00),
                 "nope": (99.50, 27.69, 0.00)},
}

# (APE, APE + regulariser 1e-4, NoPE) per language, data_local.py's `ape`, `reg`, `nope`.
_FORMAL = {
    "dyck2": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "dyck3": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "dyck4": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "dyck12": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "tomita1": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "tomita2": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "tomita3": ((60.45, 7.7, 0), (57.1, 6.9, 0), (21.1, 0, 0)),
    "tomita4": ((100, 85.4, 84.4), (100, 81.3, 79.3), (100, 16.45, 0)),
    "tomita5": ((54.4, 0, 0), (52.1, 0, 0), (7.1, 0, 0)),
    "tomita6": ((59.6, 0, 0), (58.6, 0, 0), (2.4, 0, 0)),
    "tomita7": ((100, 94.2, 93.2), (100, 91.2, 90.9), (100, 87.5, 76.2)),
    "abcde": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "ab_d_bc": ((100, 99.8, 98.5), (100, 100, 100), (100, 99.8, 98.5)),
    "zot_02": ((99.7, 24.4, 1.2), (99.6, 25.6, 2.1), (18.2, 11.2, 0)),
    "aa_star": ((100, 100, 100), (100, 100, 100), (100, 0, 0)),
    "aaaa_star": ((100, 92.3, 86.7), (100, 100, 100), (100, 0, 0)),
    "abab_star": ((100, 89.4, 82.3), (100, 100, 100), (100, 0, 0)),
    "dyck1": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "shuffle2": ((85.9, 82.2, 50.4), (81.2, 79.8, 42.7), (81.2, 79.8, 42.7)),
    "anbn": ((100, 99.4, 92.3), (100, 100, 100), (100, 100, 100)),
    "anbncn": ((100, 91.2, 87.4), (100, 100, 100), (100, 100, 100)),
    "anbncndn": ((100, 86.4, 75.2), (100, 100, 100), (100, 100, 100)),
    "boolean3": ((100, 100, 100), (100, 100, 100), (100, 100, 100)),
    "boolean5": ((100, 75.3, 72.1), (100, 75.3, 72.1), (100, 75.3, 72.1)),
}
FIGURE_1 = frozenset(list(_FORMAL)[:17])  # the languages of their Figure 1; the counter languages are in no figure
FORMAL = {task: dict(zip(("ape", "ape+reg 0.0001", "nope"), values)) for task, values in _FORMAL.items()}
_BY_TASK = {**ALGORITHMIC, **FORMAL}


def published(task: str, scheme: str) -> tuple[float, float, float] | None:
    """Huang et al.'s (ID, first test bin, longest test bin) in % for a task and scheme label, or None
    where they published none."""
    return _BY_TASK.get(task, {}).get(scheme)
