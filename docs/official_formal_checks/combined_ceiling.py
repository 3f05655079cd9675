#!/usr/bin/env python3
"""Both defects together, per hash seed: strings whose target contains the masked symbol (defect a)
are always wrong; among the rest, the per-string relabeling (defect b) caps what any causal model can
get.  Prints per language the distribution of per-bin ceilings over seeds, and for every plotted row
of visualise/data_local.py the share of seeds whose ceilings admit the plotted Bin 0/1/2 values.
Usage: python3 combined_ceiling.py <generated_ds dir> <data_local.py path> [N seeds, default 100]"""
import sys, os, ast, collections, json
sys.path.insert(0, os.path.dirname(__file__))
from _common import CFG, precompute, per_seed
from defect_b_ceiling_lib import ceiling

root, dl = sys.argv[1], sys.argv[2]; N = int(sys.argv[3]) if len(sys.argv) > 3 else 100
pre = {l: precompute(root, l) for l in CFG}
seeds = per_seed(pre, N)
ceil = {l: [] for l in CFG}   # per seed: list of per-bin ceiling % (val bins only)
for lang, p in pre.items():
    cache = {}
    for s, res in enumerate(seeds):
        r = res[lang]; vl = r['vocab_list']; pos = vl.index('.')
        masked = vl[pos - 1] if pos > 0 else None
        maps = r['maps']
        key = json.dumps([masked, maps], sort_keys=True)
        if key not in cache:
            row = []
            for cat, rows, src, chunks, maxlen in p['cats'][1:]:
                seqs = []
                for (kid, padded), s_, ch in zip(rows, src, chunks):
                    tg = {'$', '#'} | set(maps[kid][u] for u in p['keys'][kid]) | ({'.'} if padded else set())
                    if masked in tg: continue
                    if p['chunk'] > 1: lab = [maps[kid][u] for u in ch]
                    else: lab = list(''.join(ch))
                    seqs.append(tuple(zip(s_, lab)))
                row.append(100.0 * (ceiling(seqs) if seqs else 0) / len(rows))
            cache[key] = row
        ceil[lang].append(cache[key])
    dist = collections.Counter(tuple(round(x, 1) for x in row) for row in ceil[lang])
    print(f'{lang}: ' + '; '.join(f'{list(k)} x{v}' for k, v in dist.most_common()))

# plotted values (parsed, not executed)
tree = ast.parse(open(dl).read())
plotted = {}
for node in tree.body:
    if isinstance(node, ast.AnnAssign) and node.target.id in ('ape', 'nope', 'reg'):
        plotted[node.target.id] = ast.literal_eval(node.value)
NAME = {'d-2': 'D-2', 'd-3': 'D-3', 'd-4': 'D-4', 'd-12': 'D-12', 'tomita1': 'Tomita-1', 'tomita2': 'Tomita-2',
        'tomita3': 'Tomita-3', 'tomita4': 'Tomita-4', 'tomita5': 'Tomita-5', 'tomita6': 'Tomita-6', 'tomita7': 'Tomita-7',
        'aabbccddee': 'AAStarBBStarCCStarDDStarEEStar', 'adbc': 'ABStar_D_BCStar', '012': '012Star_0_2Star',
        '(aa)*': 'AAStar', '(aaaa)*': 'AAAAStar', '(abab)*': 'ABABStar'}
print('\n| plotted row | Bin 0/1/2 plotted | share of seeds whose ceilings admit it |')
print('|---|---|---|')
for key, lang in NAME.items():
    for scheme in ('ape', 'nope', 'reg'):
        v = [plotted[scheme][key]['Bin %d' % i] for i in range(3)]
        ok = sum(all(c + 0.05 >= x for c, x in zip(row[:3], v)) for row in ceil[lang])
        print(f'| {lang} {scheme} | {v} | {ok}/{N} |')
