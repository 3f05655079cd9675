"""Issue 10 diagnostic: is a coupled-addition model's falloff beyond its training digits attention
spread over the extra keys? Scale every attention logit (content and bias) of a trained model by a
constant f at test time and report teacher-forced exact match at 8, 12 and 16 digits, plus the
per-answer-digit error of the unscaled model at the longest length.

    python docs/pilots/coupling/attention_sharpening.py ROOT RUN_KEY

A diagnostic, not library code: it swaps `scaled_dot_product_attention` inside the transformer
module for a scaled one (the library's own sharpening is `model.attention_scale: log_length`).
Measured (T5 coupling, 8 buckets, seed 0, 3000 steps, 300 additions per length):
f = 1.0: 1.000 / 0.977 / 0.337; f = 1.2: 0.723 / 0.887 / 0.890; f = 1.5: 0.010 / 0.003 / 0.000.
Unscaled errors at 16 digits: 8-13% on the first four (least significant) answer digits and 7-23%
on the last four, 1-3% in between: the digits whose queries see the most far-bucket keys.
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

import lengthgen.model.transformer as transformer
from lengthgen.data import collate
from lengthgen.tasks import make_task
from lengthgen.training.build import load_model


class ScaledAttention:
    """Stands in for torch.nn.functional inside the transformer module: logits times `factor`."""

    def __init__(self):
        self.factor = 1.0

    def scaled_dot_product_attention(self, q, k, v, attn_mask=None, is_causal=False):
        if attn_mask is not None and attn_mask.dtype != torch.bool:
            attn_mask = attn_mask * self.factor
        return F.scaled_dot_product_attention(q * self.factor, k, v, attn_mask=attn_mask, is_causal=is_causal)


def exact_match(model, task, digits: int, examples: int = 300):
    rng = np.random.default_rng(5)
    batch = collate([task.sample(rng, digits) for _ in range(examples)])
    with torch.no_grad():
        pred = model(batch.inputs, batch.position_ids).logits.argmax(-1)
    ok = (pred == batch.targets) | (batch.targets == -100)
    return ok.all(1).float().mean().item(), 1 - ok[:, 2 * digits + 2:3 * digits + 3].float().mean(0).numpy()


def main(root: str, key: str):
    torch.set_num_threads(1)
    model, cfg = load_model(f"{root}/models/{key}.pt")
    model.eval()
    task = make_task(cfg.task.name, **cfg.task.params)
    attention = ScaledAttention()
    transformer.F = attention
    for factor in (1.0, 1.2, 1.5):
        attention.factor = factor
        print(f"factor {factor}:", [round(exact_match(model, task, n)[0], 3) for n in (8, 12, 16)])
    attention.factor = 1.0
    print("errors per answer digit at 16 (least significant first):", np.round(exact_match(model, task, 16)[1], 2))


if __name__ == "__main__":
    main(*sys.argv[1:3])
