"""Position-ID rules applied to training data (DESIGN §2: position IDs are data)."""

from __future__ import annotations

import numpy as np


def pose_position_ids(target_window: int, chunks: int, rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """PoSE (Zhu et al., ICLR 2024, §3.2): skip-wise position IDs that make a short training window
    cover the relative distances of a longer `target_window` Lt.

    The example's n tokens are cut into `chunks` N contiguous chunks at N−1 distinct uniform cut
    points; chunk i gets the skipping bias u_i ~ U{u_{i−1}, …, Lt − n} with u_0 = 0 (their eq. 4),
    added to its IDs. So IDs stay sorted, consecutive inside a chunk, and below Lt. A `(rng, ids)`
    transform like randomized positions (data.train_batch's `position_sampler`); `ids` are the
    example's own IDs (0..n−1 for language modelling) and Lt − n becomes Lt − (max ID + 1).
    Departure from the paper: the text stays contiguous (their content skip v_i = 0, an ablation
    they report), since only position IDs are a data transform here.
    """
    n = len(ids)
    slack = target_window - (int(ids.max()) + 1)
    if slack < 0:
        raise ValueError(f"pose: position ID {int(ids.max())} does not fit in the target window {target_window}; "
                         "raise train.pose_window")
    if not 1 <= chunks <= n:
        raise ValueError(f"pose: chunks must be in [1, {n}] for a window of {n} tokens, got {chunks}")
    cuts = np.sort(rng.choice(np.arange(1, n), size=chunks - 1, replace=False))
    skips = np.zeros(chunks, dtype=np.int64)
    for i in range(1, chunks):
        skips[i] = rng.integers(skips[i - 1], slack + 1)
    chunk_of = np.searchsorted(cuts, np.arange(n), side="right")
    return np.asarray(ids, dtype=np.int64) + skips[chunk_of]
