"""Sparse row sums for _Stage (_wf_stage.py), bit for bit the dense products they replace.

Under program rules a stage has ~200 rows (capacity and public reserve per type, and per tenant its caps and
quota) over ~7,500 merged jobs, and all but the capacity and reserve rows hold a few hundred jobs each: the
dense products spent almost all of their time on zeros. Both sums here skip the zeros and keep the order in
which the dense version adds the other terms; adding an exact zero changes no sum, so the results carry the
same bits (the one exception: an all-zero sum may come out +0 where the dense one gave -0, or back; they
compare equal, and nothing here tells them apart). Non-finite inputs go to the dense products (inf x 0 is NaN
there). tests/core/test_rowsum.py compares both ways bit for bit on random rule sets.

effective_price: ``member_f.T @ (price[:, None] * onehot)``, a matrix product whose sum over rows this
machine's OpenBLAS kernels (SkylakeX) take in row order, one accumulator per entry; its Haswell and Zen
kernels (OPENBLAS_CORETYPE=Haswell) do not on some shapes, nor its matrix-vector product (one column: _Stage
keeps the dense product there). Where they do not, the sum here is still the row-order sum: the same terms,
rounded apart by an ulp or so, as the dense product is from one machine to another. pi[j, c] = the sum of
price[r] over the rows r holding job j and counting column c, in row order. Jobs in the same rows share
their sums: they are summed once per distinct row set (a few dozen), then gathered.

row_total (rows of one column each, ``Rows.span`` None): ``(member_f * per[:, type_of].T).sum(axis=1)``,
numpy's pairwise sum along each row: blocks of 64-128 columns (halving, split at multiples of 8), each
block's columns dealt in turn to 8 running sums, those added as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then
the block's last n % 8 columns one by one; blocks added up the halving tree; the result added to 0. Rows
with many jobs (capacity, reserve) keep the dense sum (it is cheaper there and the same bits); the others
run the same schedule over their members only: the running sums are filled in the order of their columns,
everything after them on zero-filled arrays (block counts x 8, small)."""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import BoolArray, FloatArray, IntArray

MIN_GROUPS = 512
"""Fewer groups: the dense products (cheap there; this module's set-up would cost more)."""
SPARSE_SHARE = 0.125
"""A row takes the sparse sum when it holds at most this share of the groups."""
_BLOCK = 128  # numpy's PW_BLOCKSIZE
_UNROLL = 8


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


def packed_rows(member: BoolArray) -> np.ndarray:
    """Each group's row set (a column of member) as 64-bit words, first row in the first word's top bit:
    (groups, words); 0/1 columns compare lexicographically as these words do (_waterfill._distinct)."""
    n_rows, ng = member.shape
    packed = np.zeros((ng, -(-n_rows // 64) * 8), dtype=np.uint8)
    packed[:, : -(-n_rows // 8)] = np.packbits(np.ascontiguousarray(member.T), axis=1)  # big bit order
    words: np.ndarray = packed.view(">u8").astype(np.uint64)
    return words


def _row_sets(member: BoolArray) -> tuple[IntArray, IntArray]:
    """The distinct row sets of the groups (columns of member): a group holding each, and each group's set."""
    ng = member.shape[1]
    keys = packed_rows(member)  # (groups, words)
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


def _leaves(n: int) -> tuple[list[tuple[int, int]], list[list[tuple[int, int, int]]], int]:
    """numpy's pairwise-sum blocks of n >= 8 elements: the leaves (start, size), in order (nodes 0..), the
    merges (node, left, right) grouped by height (the others are nodes len(leaves)..), and the root."""
    leaves: list[tuple[int, int]] = []

    def blocks(s: int, m: int) -> None:
        if m <= _BLOCK:
            leaves.append((s, m))
            return
        m2 = m // 2 - (m // 2) % _UNROLL
        blocks(s, m2)
        blocks(s + m2, m - m2)

    blocks(0, n)
    by_height: list[list[tuple[int, int, int]]] = []
    count = [0, len(leaves)]  # next leaf, next node

    def tree(m: int) -> tuple[int, int]:  # (node, height), leaves in the order blocks() found them
        if m <= _BLOCK:
            count[0] += 1
            return count[0] - 1, 0
        m2 = m // 2 - (m // 2) % _UNROLL
        left, hl = tree(m2)
        right, hr = tree(m - m2)
        node, h = count[1], max(hl, hr) + 1
        count[1] += 1
        while len(by_height) < h:
            by_height.append([])
        by_height[h - 1].append((node, left, right))
        return node, h

    root, _ = tree(n)
    return leaves, by_height, root


class RowTotal:
    """row_total's sum (rows of one column each), numpy's pairwise order, members only."""

    def __init__(self, member: BoolArray, type_of: IntArray, n_types: int) -> None:
        n_rows, ng = member.shape
        count = member.sum(axis=1)
        self.sparse = np.nonzero(count <= SPARSE_SHARE * ng)[0]
        self.dense = np.nonzero(count > SPARSE_SHARE * ng)[0]
        self.member_dense = member[self.dense].astype(np.float64)
        self.type_dense = type_of[self.dense]
        leaves, self.merges, self.root = _leaves(ng)
        self.n_leaves = len(leaves)
        self.n_nodes = self.n_leaves + sum(len(m) for m in self.merges)
        starts = np.array([s for s, _ in leaves])
        sizes = np.array([m for _, m in leaves])
        main = sizes - sizes % _UNROLL
        ns = len(self.sparse)
        i, g = np.nonzero(member[self.sparse])  # row-major: each row's members in column order
        b = np.searchsorted(starts, g, side="right") - 1
        off = g - starts[b]
        flat = g * n_types + type_of[self.sparse][i]  # into per.ravel()
        in_main = off < main[b]
        slot = (i * self.n_leaves + b) * _UNROLL + off % _UNROLL
        self.acc_levels = [(slot[in_main][k], flat[in_main][k]) for k in _ranked(slot[in_main])]
        rest = ~in_main
        self.rest_slot = (i[rest] * self.n_leaves + b[rest]) * _UNROLL + (off[rest] - main[b[rest]])
        self.rest_flat = flat[rest]
        self.shape = (ns, self.n_leaves, _UNROLL)
        self.merge_idx = [
            (np.array([p for p, _, _ in m]), np.array([lf for _, lf, _ in m]), np.array([r for _, _, r in m]))
            for m in self.merges
        ]

    def __call__(self, per: FloatArray, n_rows: int) -> FloatArray:
        out = np.zeros(n_rows)
        if len(self.dense):
            out[self.dense] = (self.member_dense * per[:, self.type_dense].T).sum(axis=1)
        if not len(self.sparse):
            return out
        pf = np.ascontiguousarray(per).reshape(-1)
        acc = np.zeros(int(np.prod(self.shape)))
        for slot, flat in self.acc_levels:
            acc[slot] += pf[flat]
        rest = np.zeros(int(np.prod(self.shape)))
        rest[self.rest_slot] = pf[self.rest_flat]
        r = acc.reshape(self.shape)
        res = ((r[:, :, 0] + r[:, :, 1]) + (r[:, :, 2] + r[:, :, 3])) + (
            (r[:, :, 4] + r[:, :, 5]) + (r[:, :, 6] + r[:, :, 7])
        )
        tail = rest.reshape(self.shape)
        for q in range(_UNROLL - 1):
            res += tail[:, :, q]
        val = np.zeros((self.shape[0], self.n_nodes))
        val[:, : self.n_leaves] = res
        for parent, left, right in self.merge_idx:
            val[:, parent] = val[:, left] + val[:, right]
        out[self.sparse] = 0.0 + val[:, self.root]
        return out
