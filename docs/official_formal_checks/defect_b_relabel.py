#!/usr/bin/env python3
"""Defect (b): dataset_utils.py l.22-37 tokenize_output_string() maps each output chunk
(chunk_size 2 for Tomita-1/2/3/4/7 and D-n, 4 for ab*d bc*) to a letter chr(i) using
unique_tokens = list(set(tokenized)) of THAT string only.  The same chunk therefore gets a different
letter in strings whose chunk sets differ (e.g. Tomita-7: a string whose chunks are all 'yy' gets
'yy'->chr(0); a string with 'ny' and 'yy' gets, depending on set order, 'ny'->chr(0),'yy'->chr(1)).
Set order depends on the per-process hash seed, so we evaluate PYTHONHASHSEED = 0..N-1.
Per bin we report (1) strings whose chunk->letter mapping disagrees with the majority mapping of the
training strings, and (2) the exact ceiling on all-positions-correct accuracy for ANY causal model
(prediction at position i a function of input[:i+1]), from a trie over (input char, label) pairs.
Usage: python3 defect_b_relabel.py <generated_ds dir> [N seeds, default 100]"""
import sys, os, json, collections
sys.path.insert(0, os.path.dirname(__file__))
from _common import CFG, precompute, per_seed
from defect_b_ceiling_lib import ceiling
sys.setrecursionlimit(10000)

root = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
langs = [l for l in CFG if CFG[l][0] > 1]
pre = {l: precompute(root, l) for l in langs}
seeds = per_seed(pre, N)

print('| folder | hash-seed outcome (set order -> chunk:letter for the full chunk set) | share of seeds | per category: relabeled vs train-majority mapping (n) ; exact ceiling for any causal model |')
print('|---|---|---|---|')
for lang in langs:
    p = pre[lang]
    groups = collections.OrderedDict()
    for s, res in enumerate(seeds):
        k = json.dumps(res[lang]['maps'], sort_keys=True)
        groups.setdefault(k, []).append(s)
    merged = collections.OrderedDict()  # outcomes with identical numbers are merged
    for k, ss in groups.items():
        maps = json.loads(k)
        # majority letter per chunk over training strings
        train_rows = p['cats'][0][1]
        votes = collections.defaultdict(collections.Counter)
        for kid, padded in train_rows:
            for u in p['keys'][kid]:
                votes[u][maps[kid][u]] += 1
        maj = {u: c.most_common(1)[0][0] for u, c in votes.items()}
        cells = []
        for cat, rows, src, chunks, maxlen in p['cats']:
            relab = sum(any(maps[kid][u] != maj.get(u) for u in p['keys'][kid]) for kid, _ in rows)
            seqs = [tuple(zip(s_, (maps[kid][u] for u in ch))) for (kid, _), s_, ch in zip(rows, src, chunks)]
            c = ceiling(seqs)
            cells.append(f'{cat}: {relab}/{len(rows)} relabeled; ceiling {c}/{len(rows)} = {100*c/len(rows):.1f}%')
        full = max(range(len(p['keys'])), key=lambda i: len(p['keys'][i]))
        desc = ', '.join(f'{u}:{ord(maps[full][u])}' for u in p['keys'][full])
        m = merged.setdefault('; '.join(cells), [set(), 0]); m[0].add(desc); m[1] += len(ss)
    for cells, (descs, n) in sorted(merged.items(), key=lambda kv: -kv[1][1]):
        print(f'| {lang} | {" or ".join(sorted(descs))} | {n}/{N} | {cells} |', flush=True)
