"""What a PPC model's position head gets right: its teacher-forced accuracy at each answer token
(on variable chains, answer token j is hop j's variable) per length bin, and the histogram of its
errors (predicted ID - true ID). On variable chains an assignment spans 4 IDs, so an error of a
multiple of 4 picks the wrong assignment, any other is an imprecise ID."""

from __future__ import annotations

from collections import Counter, defaultdict

import torch

from ..data import IGNORE, batches
from ..errors import InputError
from ..evaluate import CURVE_TAG, eval_examples
from ..ppc import position_targets


@torch.no_grad()
def head_errors(model, examples, batch_size: int = 256) -> tuple[dict[int, list[int]], Counter]:
    """({answer token j: [right, total]}, Counter of nonzero ID errors) over the examples."""
    model.eval()
    per_token: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    errors: Counter = Counter()
    for batch in batches(examples, batch_size):
        predicted = model(batch.inputs, batch.position_ids).position_logits.argmax(-1)
        targets = position_targets(batch)
        for row, example in enumerate(batch.examples):
            for t in (targets[row] != IGNORE).nonzero().flatten().tolist():
                j = t - example.answer_start
                error = int(predicted[row, t] - targets[row, t])
                per_token[j][0] += error == 0
                per_token[j][1] += 1
                if error:
                    errors[error] += 1
    return dict(per_token), errors


def position_head_report(model, cfg, task, examples: int = 200, period: int = 4) -> str:
    """Markdown: accuracy per answer token and bin, then the error histogram over all bins, with
    the share of errors that are multiples of `period` (a wrong assignment on variable chains)."""
    if not model.predicts_positions:
        raise InputError(f"run {cfg.name or cfg.key()} has no position head (model.predict_positions is false)")
    table, errors = {}, Counter()
    for lo, hi in cfg.task.eval_bins:
        table[lo, hi], bin_errors = head_errors(model, eval_examples(task, lo, hi, examples, tag=CURVE_TAG))
        errors += bin_errors
    tokens = sorted({j for per in table.values() for j in per})
    lines = [f"Position head of {cfg.name or cfg.key()}: teacher-forced accuracy at answer token j "
             f"({examples} examples per bin)", "",
             "| bin | " + " | ".join(f"j = {j}" for j in tokens) + " | all |", "|---" * (len(tokens) + 2) + "|"]
    for (lo, hi), per in table.items():
        cells = [f"{per[j][0] / per[j][1]:.3f}" if j in per else "–" for j in tokens]
        right, total = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
        lines.append(f"| [{lo}, {hi}] | " + " | ".join(cells) + f" | {right / max(total, 1):.3f} |")
    wrong = sum(errors.values())
    far = sum(n for e, n in errors.items() if e % period == 0)
    lines += ["", f"ID errors (predicted - true), all bins: {wrong} wrong IDs; {far} ({far / max(wrong, 1):.0%}) are "
                  f"multiples of {period} (another assignment), {wrong - far} imprecise.", "",
              "| error | count |", "|---|---|"]
    lines += [f"| {e:+d} | {n} |" for e, n in sorted(errors.items())]
    return "\n".join(lines) + "\n"
