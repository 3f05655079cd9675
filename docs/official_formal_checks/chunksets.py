import sys, os, collections
root = sys.argv[1]
CH = {'Tomita-1':2,'Tomita-2':2,'Tomita-3':2,'Tomita-4':2,'Tomita-7':2,'D-2':2,'D-3':2,'D-4':2,'D-12':2,'ABStar_D_BCStar':4}
for lang, c in CH.items():
    d = os.path.join(root, lang)
    for f in sorted(os.listdir(d)):
        if 'tgt' not in f: continue
        cnt = collections.Counter()
        for l in open(os.path.join(d, f)):
            s = l.rstrip('\n'); ch = [s[i:i+c] for i in range(0, len(s), c)]
            cnt[frozenset(ch)] += 1
        print(lang, f, {'/'.join(sorted(k)): v for k, v in cnt.most_common()})
