#!/usr/bin/env python3
"""Defect (a): train_with_ce.py l.260 passes pad_token_id = encoder['.'] (raw position of '.' in
list(vocab)), but dataset_utils.py l.101 encodes every symbol as encoder[c] + 1.  So the mask
`labels != pad_token_id` (train_with_ce.py l.104) is False exactly at positions whose label is the
symbol c with encoder[c] == encoder['.'] - 1 (none if '.' is at position 0), and
`((pred == labels) & pad_mask).all(dim=-1)` (l.124-127) scores every string whose target contains c as
wrong, whatever the model predicts.  Which c it is depends on set iteration order, i.e. on the
per-process string hash seed (no PYTHONHASHSEED anywhere in the repo), so we evaluate seeds 0..N-1.
Usage: python3 defect_a_mask.py <generated_ds dir> [N seeds, default 100]"""
import sys, collections
sys.path.insert(0, __import__('os').path.dirname(__file__))
from _common import CFG, precompute, per_seed, check_pandas_encoder

root = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
print(check_pandas_encoder())
pre = {l: precompute(root, l) for l in CFG}
seeds = per_seed(pre, N)
def show(c):
    return repr(c) if c is not None else 'none'
summary = {}
for lang, p in pre.items():
    bs = CFG[lang][2]
    outcomes = collections.OrderedDict()
    for s, res in enumerate(seeds):
        r = res[lang]; vl = r['vocab_list']; maps = r['maps']
        pos = vl.index('.')
        masked = vl[pos - 1] if pos > 0 else None
        row = []
        for cat, rows, src, chunks, maxlen in p['cats']:
            bad = []
            for kid, padded in rows:
                tg = {'$', '#'} | set(maps[kid][u] for u in p['keys'][kid]) | ({'.'} if padded else set())
                bad.append(masked in tg)
            n = len(bad); nb = sum(bad)
            # reported number = mean over DataLoader batches (no shuffle) of per-batch accuracy
            bm = [1 - sum(bad[i:i + bs]) / len(bad[i:i + bs]) for i in range(0, n, bs)]
            row.append((cat, n, nb, 100 * (n - nb) / n, 100 * sum(bm) / len(bm)))
        # what the masked symbol stands for
        if masked in ('$', '#'):
            kind = 'BOS/EOS (in every target)'
        elif masked is None:
            kind = "nothing masked ('.' has id 0)"
        elif any(masked in x for x in p['inp']) and not any(masked in m.values() for m in maps):
            kind = 'input-only symbol (never a label)'
        else:
            kind = 'output label'
        key = (show(masked), kind, tuple(row))
        outcomes.setdefault(key, []).append(s)
    summary[lang] = outcomes
    print(f'\n## {lang}  (vocab size {len(seeds[0][lang]["vocab_list"])}, batch {bs})')
    for (m, kind, row), ss in outcomes.items():
        print(f'  masked={m} [{kind}]  seeds {len(ss)}/{N} (e.g. {ss[:5]})')
        print('    ' + '; '.join(f'{c}: {nb}/{n} always wrong -> max {a:.1f}% (batch-mean {b:.1f}%)' for c, n, nb, a, b in row))

print('\n# SUMMARY over %d hash seeds: share of seeds per outcome; "max%%" = per-bin ceiling on the reported accuracy' % N)
print('| folder | no effect | every string scored wrong (0%) | partial: masked symbol, share, max% train / bin0 / bin1 / bin2 (/ bin3) |')
print('|---|---|---|---|')
for lang, outcomes in summary.items():
    none = allw = 0; part = []
    for (m, kind, row), ss in outcomes.items():
        nbs = [r[2] for r in row]
        if all(x == 0 for x in nbs): none += len(ss)
        elif all(r[2] == r[1] for r in row): allw += len(ss)
        else: part.append(f"{m} {len(ss)}%: " + ' / '.join(f'{r[3]:.1f}' for r in row))
    print(f'| {lang} | {100*none/N:.0f}% | {100*allw/N:.0f}% | {"; ".join(part) or "-"} |')
