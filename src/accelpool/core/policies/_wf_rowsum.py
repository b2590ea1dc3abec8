"""Sparse row sums for _Stage (_wf_stage.py), bit for bit the dense product they replace.

Under program rules a stage has ~200 rows (capacity and public reserve per type, and per tenant its caps and
quota) over ~7,500 merged jobs, and all but the capacity and reserve rows hold a few hundred jobs each: the
dense product spent almost all of its time on zeros. The sum here skips the zeros and keep the order in
which the dense version adds the other terms; adding an exact zero changes no sum, so the results carry the
same bits (the one exception: an all-zero sum may come out +0 where the dense one gave -0, or back; they
compare equal, and nothing here tells them apart). Non-finite inputs go to the dense product (inf x 0 is NaN
there). tests/core/test_rowsum.py compares both ways bit for bit on random rule sets.

effective_price: ``member_f.T @ (price[:, None] * onehot)``, a matrix product whose sum over rows this
machine's OpenBLAS kernels (SkylakeX) take in row order, one accumulator per entry; its Haswell and Zen
kernels (OPENBLAS_CORETYPE=Haswell) do not on some shapes, nor its matrix-vector product (one column: _Stage
keeps the dense product there). Where they do not, the sum here is still the row-order sum: the same terms,
rounded apart by an ulp or so, as the dense product is from one machine to another. pi[j, c] = the sum of price[r] over the rows r holding job j and counting column c, in row order. Jobs
in the same rows share their sums: they are summed once per distinct row set (a few dozen), then gathered.
"""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray

MIN_GROUPS = 512
"""Fewer groups: the dense product (cheap there; this module's set-up would cost more)."""


def _ranked(cell: IntArray) -> list[IntArray]:
    """Entries (in the order given, which is each cell's summation order) split by their rank in their
    cell: element k lists the positions of every cell's k-th entry (each cell at most once)."""
    order = np.argsort(cell, kind="stable")
    sc = cell[order]
    start = np.ones(len(sc), dtype=bool)
    start[1:] = sc[1:] != sc[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(sc)), 0))
    rank = np.arange(len(sc)) - first
    out: list[IntArray] = []
    for k in range(int(rank.max(initial=-1)) + 1):
        out.append(order[rank == k])
    return out


def _row_sets(member: BoolArray) -> tuple[IntArray, IntArray]:
    """The distinct row sets of the groups (columns of member): a group holding each, and each group's set."""
    n_rows, ng = member.shape
    words = -(-n_rows // 64)
    packed = np.zeros((ng, words * 8), dtype=np.uint8)
    packed[:, : -(-n_rows // 8)] = np.packbits(np.ascontiguousarray(member.T), axis=1)
    keys = packed.view(np.uint64)  # (groups, words)
    order = np.lexsort(keys.T[::-1])
    sk = keys[order]
    new = np.ones(ng, dtype=bool)
    new[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    inverse = np.empty(ng, dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    first: IntArray = order[new]
    return first, inverse


class PriceSum:
    """effective_price's sum, row order, once per distinct row set."""

    def __init__(self, member: BoolArray, cover: BoolArray) -> None:
        n_rows, ng = member.shape
        self.n_cols = cover.shape[1]
        first, self.inverse = _row_sets(member)
        self.n_sets = len(first)
        mu = member[:, first]  # (rows, sets)
        hit = mu.T[:, None, :] & cover.T[None, :, :]  # (sets, cols, rows)
        s, c, r = np.nonzero(hit)  # row order within each (set, col): C order of nonzero
        cell = s * self.n_cols + c
        self.levels = [(cell[k], r[k]) for k in _ranked(cell)]

    def __call__(self, price: FloatArray) -> FloatArray:
        val = np.zeros(self.n_sets * self.n_cols)
        for cell, row in self.levels:
            val[cell] += price[row]
        out: FloatArray = val.reshape(self.n_sets, self.n_cols)[self.inverse]
        return out
