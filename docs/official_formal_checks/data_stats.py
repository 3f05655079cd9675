#!/usr/bin/env python3
"""Per-language stats of the committed data sets.
Usage: python3 data_stats.py <dir containing <lang>/train_src.txt ...> (e.g. .../formal_lang_suite/generated_ds)"""
import sys, os, re
root = sys.argv[1]
def rd(p):
    with open(p) as f:
        return [l.replace('\n', '') for l in f.readlines()]   # same as dataset_utils.read_file
print("| folder | file | n | min len | max len | unique | dup-in-train | overlap w/ train |")
print("|---|---|---|---|---|---|---|---|")
for lang in sorted(os.listdir(root)):
    d = os.path.join(root, lang)
    files = sorted(f for f in os.listdir(d) if f.startswith(('train_src', 'val_src')))
    files = ['train_src.txt'] + sorted(f for f in files if f != 'train_src.txt')
    tr = rd(os.path.join(d, 'train_src.txt')); trset = set(tr); trmax = max(map(len, tr))
    mx = 0
    for f in files:
        s = rd(os.path.join(d, f)); L = [len(x) for x in s]
        t = rd(os.path.join(d, f.replace('src', 'tgt')))
        assert len(t) == len(s), (lang, f)
        ov = '' if f == 'train_src.txt' else sum(x in trset for x in s)
        print(f"| {lang} | {f} | {len(s)} | {min(L)} | {max(L)} | {len(set(s))} | {len(s)-len(set(s))} | {ov} |")
        mx = max(mx, max(L))
    print(f"| {lang} | ratio longest-bin max / train max | {mx}/{trmax} = {mx/trmax:.2f} | | | | | |")
