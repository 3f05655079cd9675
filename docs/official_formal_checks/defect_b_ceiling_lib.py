import sys
sys.setrecursionlimit(10000)
def ceiling(seqs):
    """max #strings fully correct for a predictor that is a function of the input prefix."""
    seqs = sorted(seqs)
    def f(lo, hi, d):
        if hi - lo == 1: return 1
        total, i = 0, lo
        while i < hi:  # group by x at depth d (END if string ended)
            x = seqs[i][d][0] if d < len(seqs[i]) else None
            j = i
            best, k = 0, i
            while j < hi and (seqs[j][d][0] if d < len(seqs[j]) else None) == x:
                j += 1
            if x is None:
                total += j - i; i = j; continue
            while k < j:  # group by label y
                y = seqs[k][d][1]; m = k
                while m < j and seqs[m][d][1] == y: m += 1
                best = max(best, f(k, m, d + 1)); k = m
            total += best; i = j
        return total
    return f(0, len(seqs), 0)

