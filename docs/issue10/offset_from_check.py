"""Issue 10 diagnostic, not a preset: train coupled addition with the random start leaving <bos> at
ID 0 (Cho et al.; `Example.offset_from`), which today's `data.collate` does not honour yet.

Runs `lengthgen run docs/issue10/offset_from_check.yaml` with `data.collate` wrapped so that an
example's offset shifts only `position_ids[offset_from:]` -- what `positions.py` is to do.
"""

import sys

import numpy as np

from lengthgen import data

_collate = data.collate


def collate_honouring_offset_from(examples, offsets=None):
    if offsets is None:
        return _collate(examples)
    batch = _collate(examples, offsets)
    for b, (e, o) in enumerate(zip(examples, offsets)):
        batch.position_ids[b, :e.offset_from] -= int(o)
    return batch


data.collate = collate_honouring_offset_from

if __name__ == "__main__":
    from lengthgen.cli import main

    sys.exit(main(["--root", sys.argv[1], "run", "docs/issue10/offset_from_check.yaml", "--no-report"]))
