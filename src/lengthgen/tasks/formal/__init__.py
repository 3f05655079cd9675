"""Formal-language labelling tasks (Huang et al. 2025 after Bhattamishra et al. 2020; docs/design.md §4.3).

Conventions: docs/design.md §4.3. Every sampled string s = s1..sn is *in* its
language; the label at position i describes the prefix p = s1..si:

- next-viable: one flag per alphabet symbol c (alphabet order): "p·c is a prefix of a word of L";
- next-member: one flag per c: "p·c ∈ L";
- member: one flag: "p ∈ L";
- successor (a⁺b⁺c⁺d⁺e⁺ only): the upper-cased successor of the last letter, e→T ("may end");
- ends-02+ ({0,1,2}*02* only): `e` iff p ∈ {0,1,2}*02⁺, else `c`.

Layout (n = string length):

    inputs    = <bos> s1 … sn
    targets   = <pad> L:f1 … L:fn      one label token per position
    loss_mask =   0     1  …  1

`answer_start` is None: labels are predicted, never fed back. A string counts as correct iff
the label at every masked position is right (teacher forcing and greedy decoding coincide).
Each task has one fixed label vocabulary, `L:` + flags (every combination of flags, e.g. L:yy,
L:yn, L:ny, L:nn), listed after the alphabet; `L:` cannot clash with an alphabet symbol.

Lengths. Some languages have no word of some lengths (D-n, (aa)*, aⁿbⁿ: odd n, ...). Valid
lengths are n ≥ `min_length` with n a multiple of `length_period`; `valid_lengths(lo, hi)` lists
them (what training and evaluation draw from) and `sample` raises ValueError for any other n.

Counter languages (no public generator; our definitions, labelled next-viable with 1/0 flags):
- dyck1: Dyck-1 over a (open), b (close), unbounded depth; flags [a: 1, b: depth > 0].
- shuffle2: the shuffle of Dyck-1 over (a, b) and Dyck-1 over (c, d): each pair's count never
  goes negative and both end at 0; flags [a: 1, b: #a > #b, c: 1, d: #c > #d].
- anbn, anbncn, anbncndn: {aᵏbᵏ}, {aᵏbᵏcᵏ}, {aᵏbᵏcᵏdᵏ}, k ≥ 1.
- boolean3, boolean5: Boolean expressions in Polish (prefix) notation over the constants 0, 1.
  boolean3 has the 3 operators ~ (not, arity 1), & and | (arity 2); boolean5 adds ^ (xor,
  arity 2) and ? (if-then-else, arity 3). A prefix is viable iff it still needs operands, so
  every flag is 1 while the expression is incomplete and all flags are 0 once it is complete.

Samplers. Task parameter `sampler`: `official` (the default; the paper's numbers were measured
under it) or `uniform` (our earlier samplers). `official` follows the official generators
(lacoco-lab/length_generalization, formal_lang_suite/generators/; re-stated in
the family modules): `sample_window(rng, lo, hi)` draws a string as their generator does for
the window [lo, hi] (their length distribution: e.g. Tomita-7 and D-n concentrate near hi), and
`sample(rng, n)` draws the same generator given the length n where it has such a form
(Tomita-3: their run structure; Tomita-7: their nested run lengths with top n, redrawn until
the length is n; {a,b}*d{b,c}* and {0,1,2}*02*: their prefix/suffix split, top n+1, redrawn
until the length is n; Tomita-1, -2, -4, -5, -6 and the periodic languages: the same as ours).
D-n and a⁺b⁺c⁺d⁺e⁺ draw their lengths as an outcome of a recursive (nested) process with no
given-length form (an exact-length redraw costs 13-75 ms a string), so their official strings
come only from `sample_window`; `sample(rng, n)` keeps ours there. The counter languages have
no official generator: both choices are ours. Default windows follow the official data
(generated_ds/): abcde trains on [5, 200] and tests to 300 and 400 (their bins kept the lower
window 5); ab_d_bc and zot_02 train on [2, 50] (their strings are shorter than the top) and
test to 100 and 150 (their bins kept the lower window 2); D-2 tests to 100 and 150.

APE offsets. Task parameter `offset_range`: `longest` (the default, the general offset rule
`longest_sequence` of positions.OFFSET_RULES) or `official` (the rule `longest_test_sequence`,
Huang et al.'s train_with_ce.py: every training example shifted by k uniform over [0, L), L = the
longest test sequence, so the table has ~2L rows).

The `uniform` samplers follow formal_languages.md with `length` fixed by the caller; the changes this forces:
Tomita-5/6 draw uniform bit strings of the given length and reject non-members (exactly the
reference generator conditioned on its length); a⁺b⁺c⁺d⁺e⁺ splits n into five positive counts
uniformly; D-n duplicates are not rejected here (a sampler draws one string; de-duplicating a
set is the caller's business). Dyck-1 is uniform over Dyck words of length n (cycle lemma);
Shuffle-2 splits n into two even parts, draws a Dyck-1 word for each and interleaves them
uniformly; Boolean-k fills operand slots left to right, giving each slot of size s > 1 an
operator of arity ≤ s−1 chosen uniformly and a uniform split of the remaining size.
"""

from ..base import TASKS
from . import tomita, dyck, periodic, star_free, counter  # noqa: F401  (registers each family, in this order)
from .base import LABEL_PREFIX, FormalLanguage

FORMAL_TASKS = tuple(sorted(name for name, cls in TASKS.items() if issubclass(cls, FormalLanguage)))

# `lengthgen tasks NAME` shows each format: say there which sampler is the paper's.
for _name in FORMAL_TASKS:
    TASKS[_name].format += ("; sampler (param `sampler`): official (default; the paper's generators, see the "
                            "lengthgen.tasks.formal docstring) or uniform (ours)")

__all__ = ["FORMAL_TASKS", "LABEL_PREFIX", "FormalLanguage"]
