"""Shared helpers: a faithful re-implementation of the pieces of
formal_lang_suite/dataset_utils.py that decide token ids and labels.
Everything that depends on Python's per-process string-hash seed
(set iteration order) is evaluated in child processes run with
PYTHONHASHSEED=s, for s in range(N)."""
import os, sys, json, pickle, subprocess, tempfile, collections

# chunk_size / num_val_bins from formal_lang_suite/configs/dataset/*.yaml
CFG = {  # folder: (chunk_size, num_val_bins, batch_size used in experiments/*.yaml)
    'Tomita-1': (2, 3, 16), 'Tomita-2': (2, 3, 16), 'Tomita-3': (2, 3, 16), 'Tomita-4': (2, 3, 16),
    'Tomita-5': (1, 4, 16), 'Tomita-6': (1, 4, 16), 'Tomita-7': (2, 3, 16),
    'D-2': (2, 3, 16), 'D-3': (2, 3, 16), 'D-4': (2, 3, 16), 'D-12': (2, 3, 16),
    'AAStar': (1, 3, 16), 'AAAAStar': (1, 3, 16), 'ABABStar': (1, 3, 4),
    'AAStarBBStarCCStarDDStarEEStar': (1, 3, 16), 'ABStar_D_BCStar': (4, 3, 16),
    '012Star_0_2Star': (1, 3, 16),
}

def read_file(p):  # dataset_utils.read_file
    with open(p) as f:
        return [d.replace('\n', '') for d in f.readlines()]

def load(root, lang):
    """Returns list of (category, src list, chunk-list list) in the order create_dataloader uses."""
    c, nb, _ = CFG[lang]
    d = os.path.join(root, lang)
    cats = [('train', 'train_src.txt', 'train_tgt.txt')] + \
           [('val_bin%d' % i, 'val_src_bin%d.txt' % i, 'val_tgt_bin%d.txt' % i) for i in range(nb)]
    out = []
    for cat, fs, ft in cats:
        src, tgt = read_file(os.path.join(d, fs)), read_file(os.path.join(d, ft))
        chunks = [[t[i:i + c] for i in range(0, len(t), c)] for t in tgt]  # tokenize_output_string l.24
        out.append((cat, src, chunks))
    return out

def first_occ(seq):
    seen, res = set(), []
    for x in seq:
        if x not in seen:
            seen.add(x); res.append(x)
    return res

def precompute(root, lang):
    """Seed-independent structure. A string's label mapping depends only on its distinct
    chunks in first-occurrence order (key); set(list) builds the same hash table as set(dedup list)."""
    c = CFG[lang][0]
    data = load(root, lang)
    keys, key_id = [], {}
    cats = []
    out_events = []  # (key_id, padded) first occurrences, in order, to rebuild output-char order
    seen_ev = set()
    for cat, src, chunks in data:
        if c > 1:
            maxlen = max(max(map(len, src)), max(map(len, chunks)))
        else:  # chunk_size 1: no tokenisation, output strings are used as is
            maxlen = max(max(map(len, src)), max(len(''.join(x)) for x in chunks))
        rows = []
        for s, ch in zip(src, chunks):
            assert len(ch) == len(s) or c == 1
            padded = len(s) < maxlen
            if c > 1:
                k = tuple(first_occ(ch))
            else:
                k = tuple(first_occ(''.join(ch)))  # raw output chars
            if k not in key_id:
                key_id[k] = len(keys); keys.append(k)
            kid = key_id[k]
            rows.append((kid, padded))
            if (kid, padded) not in seen_ev:
                seen_ev.add((kid, padded)); out_events.append((kid, padded))
        cats.append((cat, rows, src, chunks, maxlen))
    # exact first-occurrence order of input chars over padded input strings (add_special_tokens)
    inp = []
    seen = set()
    for cat, rows, src, chunks, maxlen in cats:
        for s in src:
            for x in '$' + s + '#' + ('.' if len(s) < maxlen else ''):
                if x not in seen:
                    seen.add(x); inp.append(x)
    return {'lang': lang, 'chunk': c, 'keys': keys, 'inp': inp, 'out_events': out_events, 'cats': cats}

CHILD = r'''
import sys, pickle, json
P = pickle.load(open(sys.argv[1], 'rb'))
res = {}
for lang, (chunk, keys, inp, out_events) in P.items():
    maps = []
    for k in keys:
        if chunk > 1:   # tokenize_output_string, dataset_utils.py l.26-35
            uniq = list(set(k))
            pc = [chr(i) for i in range(len(uniq) + 5)]
            for t in '$#.':
                if t in pc: pc.remove(t)
            maps.append({u: pc[i] for i, u in enumerate(uniq)})
        else:
            maps.append({u: u for u in k})
    out, seen = [], set()
    for kid, padded in out_events:   # add_special_tokens: '$' + s + '#' + pads
        for x in ['$'] + [maps[kid][u] for u in keys[kid]] + ['#'] + (['.'] if padded else []):
            if x not in seen:
                seen.add(x); out.append(x)
    vocab = set(inp).union(set(out))       # get_dataset_reqs l.65-68
    res[lang] = {'maps': maps, 'vocab_list': list(vocab)}
print(json.dumps(res))
'''

def per_seed(pre, nseeds):
    """Run the hash-order-dependent part for PYTHONHASHSEED = 0..nseeds-1."""
    P = {l: (p['chunk'], p['keys'], p['inp'], p['out_events']) for l, p in pre.items()}
    fd, path = tempfile.mkstemp(suffix='.pkl'); os.close(fd)
    pickle.dump(P, open(path, 'wb'))
    out = []
    for s in range(nseeds):
        env = dict(os.environ, PYTHONHASHSEED=str(s))
        r = subprocess.run([sys.executable, '-c', CHILD, path], env=env, capture_output=True, text=True, check=True)
        out.append(json.loads(r.stdout))
    os.remove(path)
    return out

def check_pandas_encoder():
    """encoder = pd.get_dummies(list(vocab)).idxmax() gives each symbol its position in list(vocab)."""
    try:
        import pandas as pd
    except ImportError:
        return 'pandas not installed: not checked'
    vl = list(set('$#.01ab' + chr(0) + chr(1)))
    enc = pd.get_dummies(vl).idxmax()
    ok = all(int(enc[c]) == i for i, c in enumerate(vl))
    return 'pandas %s: encoder[c] == index of c in list(vocab): %s' % (pd.__version__, ok)
