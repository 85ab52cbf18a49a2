"""Graph ops: tree ensembles (decision forests, gradient-boosted trees).

`graph.tree_ensemble` is the ONNX-ML `TreeEnsembleRegressor` / `TreeEnsembleClassifier` /
`TreeEnsemble` computation up to the raw scores: every tree routes each row of `X` from
its root to a leaf, the leaves' weights are aggregated over the trees (SUM, AVERAGE, MIN
or MAX) and the base values added. Post transforms (softmax, logistic, ...) and class
labels are separate graph ops (the ONNX importer emits them).

Node tables are properties, one entry per node, all trees in one table:

* `tree_roots[t]`: the node where tree `t` starts;
* `nodes_mode[n]`: how node `n` compares, a `NodeMode` code (`LEAF` for leaves);
* `nodes_feature[n]`, `nodes_threshold[n]` (f64): the branch test `X[:, f] <mode> t`;
* `nodes_true[n]`, `nodes_false[n]`: the node visited when the test holds / fails;
* `nodes_missing_true[n]`: where a NaN goes (1: the true branch, 0: the false branch);
* `nodes_leaf[n]`: a leaf's row in `leaf_values` (-1 for branches);
* `leaf_values[l, k]`: the weight leaf `l` gives target `k` (NaN: none, which MIN/MAX
  skip and SUM/AVERAGE count as 0); `base_values[k]`.

`graph.perfect_tree_ensemble` is the same computation with every tree completed to a
perfect binary tree of `depth` levels in heap order (node `i` has children `2i+1` when
its test holds and `2i+2` when it fails), so traversal is `depth` steps without a leaf
test: the form the perfect-tree-traversal strategy runs.

Scores are computed in f64 and rounded to f32 once. `X` is f32 or f64.

    %s = graph.tree_ensemble %x {aggregate = "SUM", tree_roots = dense<0> : tensor<1xi64>, ...} : (tensor<4x3xf32>) -> tensor<4x2xf32>
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum
from typing import ClassVar, Self

import numpy as np
from xdsl.dialects.builtin import TensorType, f32
from xdsl.irdl import irdl_op_definition, operand_def, result_def

from mlc.dialects.graph.base import ArrayProp, GraphError, GraphOp, IntProp, StrProp
from mlc.dialects.graph.types import tensor

__all__ = [
    "AGGREGATES",
    "TREE_OPS",
    "NodeMode",
    "PerfectTreeEnsembleOp",
    "TreeEnsembleOp",
    "TreeTables",
]

AGGREGATES = ("SUM", "AVERAGE", "MIN", "MAX")


class NodeMode(IntEnum):
    """How a node tests its feature (ONNX-ML `nodes_modes`), and `LEAF`."""

    LEQ = 0
    LT = 1
    GTE = 2
    GT = 3
    EQ = 4
    NEQ = 5
    LEAF = 6

    @classmethod
    def from_onnx(cls, name: str) -> NodeMode:
        """'BRANCH_LEQ' -> LEQ; 'LEAF' -> LEAF."""
        key = name.removeprefix("BRANCH_")
        if key not in cls.__members__:
            raise GraphError(f"node mode {name!r} is not supported")
        return cls[key]


def branch_test(mode: np.ndarray, x: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Elementwise `x <mode> threshold` (False where `x` is NaN), in f64."""
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore"):
        tests = [x <= threshold, x < threshold, x >= threshold, x > threshold,
                 x == threshold, (x != threshold) & ~np.isnan(x)]  # fmt: skip
    return np.select([mode == m for m in range(len(tests))], tests, default=False)


class _TreeEnsembleBase(GraphOp):
    X = operand_def(TensorType)
    scores = result_def(TensorType)
    aggregate = StrProp(default="SUM")
    base_values = ArrayProp()
    leaf_values = ArrayProp()

    #: the rank `leaf_values` has (leaves x targets; trees x leaves x targets)
    LEAF_RANK: ClassVar[int]

    @property
    def n_targets(self) -> int:
        return int(self.leaf_values_attr.get_type().get_shape()[-1])  # type: ignore[union-attr]

    @classmethod
    def infer_result_types(
        cls, operand_types: Sequence[TensorType], props: Self
    ) -> list[TensorType]:
        (x,) = operand_types
        if x.get_num_dims() != 2 or x.element_type.name not in ("f32", "f64"):  # type: ignore[attr-defined]
            raise GraphError(f"{cls.name} input must be a 2-D f32 or f64 tensor, got {x}")
        if props.aggregate not in AGGREGATES:
            raise GraphError(
                f"{cls.name} aggregate must be one of {AGGREGATES}, got {props.aggregate!r}"
            )
        leaves, base = props.leaf_values, props.base_values
        if leaves.ndim != cls.LEAF_RANK or leaves.dtype.kind != "f":
            raise GraphError(f"{cls.name} leaf_values must be a {cls.LEAF_RANK}-D float array")
        if base.shape != leaves.shape[-1:]:
            raise GraphError(
                f"{cls.name} base_values has shape {base.shape}, expected ({leaves.shape[-1]},)"
            )
        cls.check_tables(props, x.get_shape()[1])
        return [tensor([x.get_shape()[0], leaves.shape[-1]], f32)]

    @classmethod
    def check_tables(cls, props: Self, n_features: int) -> None:
        raise NotImplementedError


def _check_features(name: str, feature: np.ndarray, branch: np.ndarray, n_features: int) -> None:
    used = feature[branch]
    if used.size and (used.min() < 0 or used.max() >= n_features):
        raise GraphError(f"{name} tests feature {int(used.max())}, the input has {n_features}")


@irdl_op_definition
class TreeEnsembleOp(_TreeEnsembleBase):
    """Scores of a tree ensemble over node tables (see the module docstring).

    %s = graph.tree_ensemble %x {aggregate = "SUM", base_values = dense<0.000000e+00> : tensor<1xf64>, leaf_values = dense<[[1.000000e+00], [2.000000e+00]]> : tensor<2x1xf32>, nodes_false = dense<[2, -1, -1]> : tensor<3xi64>, nodes_feature = dense<0> : tensor<3xi64>, nodes_leaf = dense<[-1, 0, 1]> : tensor<3xi64>, nodes_missing_true = dense<0> : tensor<3xi64>, nodes_mode = dense<[0, 6, 6]> : tensor<3xi64>, nodes_threshold = dense<[5.000000e-01, 0.000000e+00, 0.000000e+00]> : tensor<3xf64>, nodes_true = dense<[1, -1, -1]> : tensor<3xi64>, tree_roots = dense<0> : tensor<1xi64>} : (tensor<4x3xf32>) -> tensor<4x1xf32>
    """

    name = "graph.tree_ensemble"
    tree_roots = ArrayProp()
    nodes_mode = ArrayProp()
    nodes_feature = ArrayProp()
    nodes_threshold = ArrayProp()
    nodes_true = ArrayProp()
    nodes_false = ArrayProp()
    nodes_missing_true = ArrayProp()
    nodes_leaf = ArrayProp()
    LEAF_RANK: ClassVar[int] = 2

    def tables(self) -> TreeTables:
        """The node tables as numpy arrays."""
        return TreeTables.of(self)

    @classmethod
    def check_tables(cls, props: Self, n_features: int) -> None:
        TreeTables.of(props).check(cls.name, n_features, len(props.leaf_values))


@irdl_op_definition
class PerfectTreeEnsembleOp(_TreeEnsembleBase):
    """A tree ensemble whose trees are perfect binary trees of `depth` levels in heap
    order: tables `nodes_*` are trees x (2**depth - 1), `leaf_values` trees x
    2**depth x targets. Row `x` visits node `i = 0`, then `2i+1` where its test holds
    and `2i+2` where it fails, `depth` times; it lands on leaf `i - (2**depth - 1)`.

    %s = graph.perfect_tree_ensemble %x {aggregate = "SUM", base_values = dense<0.000000e+00> : tensor<1xf64>, depth = 1 : i64, leaf_values = dense<[[[1.000000e+00], [2.000000e+00]]]> : tensor<1x2x1xf32>, nodes_feature = dense<0> : tensor<1x1xi64>, nodes_missing_true = dense<0> : tensor<1x1xi64>, nodes_mode = dense<0> : tensor<1x1xi64>, nodes_threshold = dense<5.000000e-01> : tensor<1x1xf64>} : (tensor<4x3xf32>) -> tensor<4x1xf32>
    """

    name = "graph.perfect_tree_ensemble"
    depth = IntProp()
    nodes_mode = ArrayProp()
    nodes_feature = ArrayProp()
    nodes_threshold = ArrayProp()
    nodes_missing_true = ArrayProp()
    LEAF_RANK: ClassVar[int] = 3

    @classmethod
    def check_tables(cls, props: Self, n_features: int) -> None:
        depth, leaves = props.depth, props.leaf_values
        if not 0 <= depth <= 24:
            raise GraphError(f"{cls.name} depth must be in [0, 24], got {depth}")
        trees = leaves.shape[0]
        shape = (trees, 2**depth - 1)
        if leaves.shape[1] != 2**depth:
            raise GraphError(
                f"{cls.name} leaf_values must have 2**depth = {2**depth} leaves per tree"
            )
        for name in ("nodes_mode", "nodes_feature", "nodes_threshold", "nodes_missing_true"):
            if getattr(props, name).shape != shape:
                raise GraphError(f"{cls.name} {name} must have shape {shape}")
        mode = props.nodes_mode
        if mode.size and (mode.min() < 0 or mode.max() >= NodeMode.LEAF):
            raise GraphError(f"{cls.name} nodes_mode must hold branch modes only")
        _check_features(cls.name, props.nodes_feature, np.ones(shape, bool), n_features)


class TreeTables:
    """The node tables of a `graph.tree_ensemble` as numpy arrays, with the checks that
    every traversal terminates (children in range, no cycles) and the tree shape queries
    the lowering strategies need."""

    FIELDS = ("tree_roots", "nodes_mode", "nodes_feature", "nodes_threshold", "nodes_true",
              "nodes_false", "nodes_missing_true", "nodes_leaf")  # fmt: skip

    def __init__(self, **arrays: np.ndarray) -> None:
        self.roots = arrays["tree_roots"]
        self.mode = arrays["nodes_mode"]
        self.feature = arrays["nodes_feature"]
        self.threshold = arrays["nodes_threshold"]
        self.true = arrays["nodes_true"]
        self.false = arrays["nodes_false"]
        self.missing_true = arrays["nodes_missing_true"]
        self.leaf = arrays["nodes_leaf"]

    @classmethod
    def of(cls, props: object) -> TreeTables:
        return cls(**{f: getattr(props, f) for f in cls.FIELDS})

    @property
    def n_nodes(self) -> int:
        return len(self.mode)

    @property
    def is_leaf(self) -> np.ndarray:
        return self.mode == NodeMode.LEAF

    def check(self, name: str, n_features: int, n_leaf_rows: int) -> None:
        n = self.n_nodes
        for field in self.FIELDS[1:]:
            arr = getattr(self, _ATTR[field])
            if arr.shape != (n,):
                raise GraphError(f"{name} {field} must have shape ({n},), got {arr.shape}")
        if self.roots.ndim != 1 or self.roots.dtype.kind != "i":
            raise GraphError(f"{name} tree_roots must be a 1-D integer array")
        if self.threshold.dtype != np.float64:
            raise GraphError(f"{name} nodes_threshold must be f64")
        if self.roots.size and (self.roots.min() < 0 or self.roots.max() >= n):
            raise GraphError(f"{name} a tree root is not a node")
        if n and (self.mode.min() < 0 or self.mode.max() > NodeMode.LEAF):
            raise GraphError(f"{name} nodes_mode holds an unknown mode")
        branch = ~self.is_leaf
        for field, arr in (("nodes_true", self.true), ("nodes_false", self.false)):
            kids = arr[branch]
            if kids.size and (kids.min() < 0 or kids.max() >= n):
                raise GraphError(f"{name} {field} names a node that does not exist")
        leaves = self.leaf[~branch]
        if leaves.size and (leaves.min() < 0 or leaves.max() >= n_leaf_rows):
            raise GraphError(f"{name} nodes_leaf names a row outside leaf_values")
        _check_features(name, self.feature, branch, n_features)
        self.depths()  # raises on cycles

    def depths(self) -> np.ndarray:
        """The number of tests on the longest path of each tree (0 for a lone leaf);
        a cycle is an error."""
        n = self.n_nodes
        out = np.zeros(len(self.roots), np.int64)
        for t, root in enumerate(self.roots):
            frontier, level = np.array([root]), 0
            while True:
                frontier = frontier[self.mode[frontier] != NodeMode.LEAF]
                if not frontier.size:
                    break
                level += 1
                if level > n:
                    raise GraphError(f"tree {t} has a cycle")
                frontier = np.unique(np.concatenate([self.true[frontier], self.false[frontier]]))
            out[t] = level
        return out

    def leaves_reached(self, x: np.ndarray) -> np.ndarray:
        """rows x trees: the node where each row's traversal of each tree ends."""
        x = np.asarray(x, np.float64)
        rows = np.arange(len(x))
        out = np.empty((len(x), len(self.roots)), np.int64)
        for t, root in enumerate(self.roots):
            node = np.full(len(x), root, np.int64)
            active = self.mode[node] != NodeMode.LEAF
            while active.any():
                n = node[active]
                value = x[rows[active], self.feature[n]]
                test = branch_test(self.mode[n], value, self.threshold[n])
                test = np.where(np.isnan(value), self.missing_true[n] != 0, test)
                node[active] = np.where(test, self.true[n], self.false[n])
                active = self.mode[node] != NodeMode.LEAF
            out[:, t] = node
        return out


_ATTR = {"tree_roots": "roots", "nodes_mode": "mode", "nodes_feature": "feature",
         "nodes_threshold": "threshold", "nodes_true": "true", "nodes_false": "false",
         "nodes_missing_true": "missing_true", "nodes_leaf": "leaf"}  # fmt: skip


def aggregate_leaves(
    values: np.ndarray, aggregate: str, base_values: np.ndarray, n_trees: int
) -> np.ndarray:
    """rows x trees x targets leaf weights (NaN: none) -> rows x targets f32 scores."""
    values = values.astype(np.float64)
    if aggregate in ("SUM", "AVERAGE"):
        scores = np.nansum(values, axis=1)
        if aggregate == "AVERAGE" and n_trees:
            scores = scores / n_trees
    else:
        pick = np.fmin if aggregate == "MIN" else np.fmax
        scores = pick.reduce(values, axis=1, initial=np.nan) if n_trees else values.sum(axis=1)
        scores = np.where(np.isnan(scores), 0.0, scores)
    return (scores + base_values.astype(np.float64)).astype(np.float32)


TREE_OPS: list[type[GraphOp]] = [TreeEnsembleOp, PerfectTreeEnsembleOp]
