"""The network as a mixed-integer linear program, per MIPVerify (Tjeng, Xiao & Tedrake, ICLR 2019).

Columns: the input x (bounded by the region's box; an L1 ball adds |x − c| ≤ t, Σt ≤ ε), then,
per piecewise node in execution order, the pre-activations that need a variable (unstable
ReLUs, members of undecided MaxPool windows) tied to earlier columns by equalities, and the
outputs with their binaries and big-M constraints. Stable neurons and decided windows are exact
linear maps and get no column. The big-M constants come from CROWN bounds, tightened layer by
layer by the LP relaxation (min and max of every pre-activation column), and every later
layer's CROWN bounds are recomputed from the tightened ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import highspy
import numpy as np
import torch

from robustcheck.certify.crown import compute_bounds, propagate
from robustcheck.certify.input_set import InputSet
from robustcheck.certify.network import BoundGraph, MaxPoolNode, Node, NotVerifiable, ReluNode

Tensor = torch.Tensor
INF = highspy.kHighsInf


@dataclass
class NodeColumns:
    """How a piecewise node's outputs appear: a column per output (−1: exact linear instead)."""

    columns: np.ndarray
    exact_slope: Tensor | None = None  # ReLU: slope of each exact neuron (0 where a column stands in)
    argmax: Tensor | None = None  # MaxPool: the member equal to the output (−1 where a column stands in)


class MilpEncoding:
    """The exact MILP of `graph` over `region`, with bounds tightened by LP when `tighten`."""

    def __init__(self, graph: BoundGraph, region: InputSet, *, tighten: bool = True) -> None:
        if region.norm == "l2":
            raise ValueError("exact verification handles the L∞ and L1 norms (an L2 ball is not linear)")
        self.graph, self.region = graph, region
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", 1)
        self.ncols = 0
        self.nodes: dict[str, NodeColumns] = {}
        self.known: dict[str, tuple[Tensor, Tensor]] = {}
        self.binary_columns: list[int] = []
        self.binary_owner: list[tuple[str, int]] = []  # (piecewise node, flat neuron or window) per binary
        self.lp_solves = 0
        self.input_columns = self._add_input()
        for node in graph.piecewise_nodes():
            self._encode(node, tighten)
        self.bounds = compute_bounds(graph, region, self.known)

    # -- building blocks ------------------------------------------------------------------
    @property
    def binaries(self) -> int:
        return len(self.binary_columns)

    def _add_columns(self, low: np.ndarray, high: np.ndarray, integer: bool = False,
                     owner: tuple[str, np.ndarray] | None = None) -> np.ndarray:
        n = len(low)
        self.h.addVars(n, np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64))
        cols = np.arange(self.ncols, self.ncols + n, dtype=np.int32)
        self.ncols += n
        if integer and n:
            self.h.changeColsIntegrality(n, cols, np.array([highspy.HighsVarType.kInteger] * n))
            self.binary_columns += cols.tolist()
            assert owner is not None
            self.binary_owner += [(owner[0], int(k)) for k in owner[1]]
        return cols

    def add_rows(self, coeffs: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        """Rows low ≤ coeffs·columns ≤ high, coeffs dense (rows, ncols) or narrower."""
        coeffs = np.atleast_2d(coeffs)
        nz = coeffs != 0
        starts = np.concatenate([[0], np.cumsum(nz.sum(axis=1))[:-1]]).astype(np.int32)
        index = np.nonzero(nz)[1].astype(np.int32)
        self.h.addRows(len(coeffs), np.asarray(low, np.float64), np.asarray(high, np.float64), int(nz.sum()),
                       starts, index, coeffs[nz].astype(np.float64))

    def _sparse_rows(self, entries: list[list[tuple[int, float]]], low: np.ndarray, high: np.ndarray) -> None:
        dense = np.zeros((len(entries), self.ncols))
        for r, row in enumerate(entries):
            for col, value in row:
                dense[r, col] += value
        self.add_rows(dense, low, high)

    def _add_input(self) -> np.ndarray:
        low, high = (t.reshape(-1).numpy() for t in self.region.bounding_box())
        cols = self._add_columns(low, high)
        if self.region.norm == "l1":
            c = self.region.center.reshape(-1).numpy()
            t = self._add_columns(np.zeros(len(c)), np.maximum(high - c, c - low))
            n = len(c)
            rows = np.zeros((2 * n + 1, self.ncols))
            rows[np.arange(n), t], rows[np.arange(n), cols] = 1.0, -1.0  # t − x ≥ −c
            rows[n + np.arange(n), t], rows[n + np.arange(n), cols] = 1.0, 1.0  # t + x ≥ c
            rows[2 * n, t] = 1.0  # Σ t ≤ ε
            self.add_rows(rows, np.concatenate([-c, c, [-INF]]), np.concatenate([np.full(2 * n, INF),
                                                                                [self.region.epsilon]]))
        return cols

    def expressions(self, start: str, rows: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """rows·v_start as (coefficients over the columns (S, ncols), constants (S,)), exact."""
        recorded: list[tuple[np.ndarray, Tensor]] = []

        def rule(node: Node, a: Tensor) -> tuple[Tensor, Tensor]:
            enc = self.nodes[node.name]
            flat = a.reshape(len(a), -1)
            has_col = torch.from_numpy(enc.columns >= 0)
            if has_col.any():
                recorded.append((enc.columns[has_col.numpy()], flat[:, has_col]))
            zero = torch.zeros(len(a), dtype=a.dtype)
            if isinstance(node, ReluNode):
                assert enc.exact_slope is not None
                return a * enc.exact_slope, zero
            assert enc.argmax is not None and isinstance(node, MaxPoolNode)
            exact = enc.argmax >= 0
            rows_in = torch.zeros(len(a), math.prod(self.graph.shapes[node.input]), dtype=a.dtype)
            rows_in.index_add_(1, enc.argmax[exact], flat[:, exact])
            return rows_in.reshape((len(a),) + self.graph.shapes[node.input]), zero

        a_in, bias = propagate(self.graph, start, rows, rule)
        coeffs = np.zeros((len(rows), self.ncols))
        coeffs[:, self.input_columns] = a_in.reshape(len(rows), -1).numpy()
        for cols, part in recorded:
            coeffs[:, cols] += part.numpy()  # one node's columns are distinct
        return coeffs, bias.numpy()

    def tie(self, start: str, index: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """New columns equal to the neurons `index` (flat) of node `start`, bounded by [low, high]."""
        shape = self.graph.shapes[start]
        eye = torch.zeros(len(index), int(np.prod(shape)), dtype=torch.float64)
        eye[torch.arange(len(index)), torch.from_numpy(index)] = 1.0
        coeffs, const = self.expressions(start, eye.reshape((len(index),) + shape))
        cols = self._add_columns(low, high)
        rows = np.zeros((len(index), self.ncols))
        rows[:, : coeffs.shape[1]] = -coeffs
        rows[np.arange(len(index)), cols] += 1.0
        self.add_rows(rows, const, const)
        return cols

    def lp_range(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """min and max of each column over the LP relaxation (the current columns and rows)."""
        h = self.h
        h.setOptionValue("solve_relaxation", True)
        low, high = np.full(len(cols), -np.inf), np.full(len(cols), np.inf)
        for k, col in enumerate(cols):
            for sign in (1.0, -1.0):
                h.changeColCost(int(col), sign)
                h.run()
                self.lp_solves += 1
                if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                    value = sign * h.getInfo().objective_function_value
                    if sign > 0:
                        low[k] = value
                    else:
                        high[k] = value
            h.changeColCost(int(col), 0.0)
        h.setOptionValue("solve_relaxation", False)
        return low, high

    # -- nodes --------------------------------------------------------------------------------
    def _encode(self, node: ReluNode | MaxPoolNode, tighten: bool) -> None:
        bounds = compute_bounds(self.graph, self.region, self.known)
        shape = self.graph.shapes[node.input]
        low = bounds.lower[node.input].reshape(-1).clone()
        high = bounds.upper[node.input].reshape(-1).clone()
        if isinstance(node, ReluNode):
            if node.slope > 1:
                raise NotVerifiable(f"exact verification: {node.op} with alpha {node.slope:g} > 1 (concave)")
            need = ((low < 0) & (high > 0)).numpy()
        else:
            need = _undecided_members(node, low, high)
        index = np.flatnonzero(need)
        z_cols = np.full(len(low), -1, dtype=np.int64)
        if len(index):
            z_cols[index] = self.tie(node.input, index, low[index].numpy(), high[index].numpy())
            if tighten:
                lp_low, lp_high = self.lp_range(z_cols[index])
                low[index] = torch.maximum(low[index], torch.from_numpy(lp_low))
                high[index] = torch.minimum(high[index], torch.from_numpy(lp_high))
                self.h.changeColsBounds(len(index), z_cols[index].astype(np.int32), low[index].numpy(),
                                        high[index].numpy())
                self.known[node.input] = (low.reshape(shape), high.reshape(shape))
        if isinstance(node, ReluNode):
            self.nodes[node.name] = self._relu(node, low, high, z_cols)
        else:
            self.nodes[node.name] = self._maxpool(node, low, high, z_cols)

    def _relu(self, node: ReluNode, low: Tensor, high: Tensor, z_cols: np.ndarray) -> NodeColumns:
        a = node.slope
        unstable = ((low < 0) & (high > 0)).numpy()
        exact = torch.where(low >= 0, 1.0, torch.where(high <= 0, a, 0.0)).to(torch.float64)
        columns = np.full(len(low), -1, dtype=np.int64)
        index = np.flatnonzero(unstable)
        if len(index):
            lo, hi = low[index].numpy(), high[index].numpy()
            y = self._add_columns(np.minimum(a * lo, 0.0), hi)
            b = self._add_columns(np.zeros(len(index)), np.ones(len(index)), integer=True, owner=(node.name, index))
            z = z_cols[index]
            rows, row_low, row_high = [], [], []
            for k in range(len(index)):
                yk, zk, bk, lk, uk = int(y[k]), int(z[k]), int(b[k]), float(lo[k]), float(hi[k])
                rows += [[(yk, 1.0), (zk, -1.0)], [(yk, 1.0), (zk, -a)],
                         [(yk, 1.0), (zk, -a), (bk, -(1 - a) * uk)], [(yk, 1.0), (zk, -1.0), (bk, -(1 - a) * lk)]]
                row_low += [0.0, 0.0, -INF, -INF]
                row_high += [INF, INF, 0.0, -(1 - a) * lk]
            self._sparse_rows(rows, np.array(row_low), np.array(row_high))
            columns[index] = y
        return NodeColumns(columns, exact_slope=exact.reshape(self.graph.shapes[node.input]))

    def _maxpool(self, node: MaxPoolNode, low: Tensor, high: Tensor, z_cols: np.ndarray) -> NodeColumns:
        windows = node.windows.numpy()
        lo, hi = low.numpy(), high.numpy()
        columns = np.full(len(windows), -1, dtype=np.int64)
        argmax = np.full(len(windows), -1, dtype=np.int64)
        rows, row_low, row_high = [], [], []
        for o, members in enumerate(windows):
            members = members[members >= 0]
            floor = lo[members].max()
            cand = members[hi[members] >= floor]
            if len(cand) == 1:
                argmax[o] = cand[0]
                continue
            top = hi[cand].max()
            (y,) = self._add_columns(np.array([floor]), np.array([top]))
            b = self._add_columns(np.zeros(len(cand)), np.ones(len(cand)), integer=True,
                                  owner=(node.name, np.full(len(cand), o)))
            for j, bj in zip(cand, b):
                rows += [[(int(y), 1.0), (int(z_cols[j]), -1.0)],
                         [(int(y), 1.0), (int(z_cols[j]), -1.0), (int(bj), top - lo[j])]]
                row_low += [0.0, -INF]
                row_high += [INF, top - lo[j]]
            rows.append([(int(bj), 1.0) for bj in b])
            row_low.append(1.0)
            row_high.append(1.0)
            columns[o] = y
        if rows:
            self._sparse_rows(rows, np.array(row_low), np.array(row_high))
        return NodeColumns(columns, argmax=torch.from_numpy(argmax))


def _undecided_members(node: MaxPoolNode, low: Tensor, high: Tensor) -> np.ndarray:
    """Flat mask of the inputs that belong to a window whose maximum is not decided by the bounds."""
    windows = node.windows.numpy()
    lo, hi = low.numpy(), high.numpy()
    need = np.zeros(len(lo), dtype=bool)
    for members in windows:
        members = members[members >= 0]
        cand = members[hi[members] >= lo[members].max()]
        if len(cand) > 1:
            need[cand] = True
    return need
