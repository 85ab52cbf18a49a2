"""Reference semantics of the tree-ensemble graph ops (ONNX-ML semantics, scores in f64
rounded to f32 once)."""

from __future__ import annotations

import numpy as np

from mlc.dialects.graph import trees as tr
from mlc.interpreters.graph.registry import reference


@reference(tr.TreeEnsembleOp)
def tree_ensemble(op: tr.TreeEnsembleOp, x: np.ndarray) -> np.ndarray:
    tables = op.tables()
    reached = tables.leaves_reached(x)  # rows x trees
    values = op.leaf_values[tables.leaf[reached]]  # rows x trees x targets
    return tr.aggregate_leaves(values, op.aggregate, op.base_values, len(tables.roots))


@reference(tr.PerfectTreeEnsembleOp)
def perfect_tree_ensemble(op: tr.PerfectTreeEnsembleOp, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    mode, feature = op.nodes_mode, op.nodes_feature
    threshold, missing_true = op.nodes_threshold, op.nodes_missing_true
    leaves = op.leaf_values
    trees = np.arange(leaves.shape[0])
    rows = np.arange(len(x))[:, None]
    node = np.zeros((len(x), len(trees)), np.int64)
    for _ in range(op.depth):
        value = x[rows, feature[trees, node]]
        test = tr.branch_test(mode[trees, node], value, threshold[trees, node])
        test = np.where(np.isnan(value), missing_true[trees, node] != 0, test)
        node = 2 * node + np.where(test, 1, 2)
    values = leaves[trees, node - (2**op.depth - 1)]  # rows x trees x targets
    return tr.aggregate_leaves(values, op.aggregate, op.base_values, len(trees))
