"""Converters of the ONNX-ML tree ensembles: `TreeEnsembleRegressor` and
`TreeEnsembleClassifier` (ai.onnx.ml opsets 1-3) and `TreeEnsemble` (opset 5).

Each becomes one `graph.tree_ensemble` (node tables normalized: one global node index,
roots, leaves with a row of weights per target) followed by standard graph ops for the
ONNX semantics around the scores: the binary-classifier completion (a model that scores
one class of two gets `[1 - s, s]`, or `[-s, s]` before a non-linear transform), the
post transform (SOFTMAX, SOFTMAX_ZERO, LOGISTIC, PROBIT) and the labels (`argmax` over
the scores, mapped to `classlabels_int64s`). String class labels are mapped at the
boundary: the function returns the label's index and records the strings in the
`mlc.labels` entry of the result's attributes in `func.func @main`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from onnx import numpy_helper
from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn, shape
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.trees import AGGREGATES, NodeMode, TreeEnsembleOp
from mlc.dialects.graph.types import tensor
from mlc.parser.onnx.node import ML_DOMAIN, NodeContext, converter

POST_TRANSFORMS = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")

#: attributes a node may carry that change nothing mlc computes
_IGNORED = {"nodes_hitrates", "nodes_hitrates_as_tensor"}


def _floats(node: NodeContext, name: str) -> np.ndarray | None:
    """A float attribute given as a list (`name`) or a tensor (`name_as_tensor`)."""
    tensor = node.attr(f"{name}_as_tensor")
    if tensor is not None:
        return np.asarray(numpy_helper.to_array(tensor), np.float64).reshape(-1)
    value = node.attr(name)
    if value is None:
        return None
    # list attributes are f32 in ONNX: widen exactly
    return np.asarray(np.asarray(value, np.float32), np.float64)


def _ints(node: NodeContext, name: str, default: Sequence[int] | None = None) -> np.ndarray:
    value = node.attr(name, default)
    if value is None:
        node.unsupported(f"attribute '{name}' is required")
    return np.asarray([int(v) for v in value], np.int64)


def _string(node: NodeContext, name: str, default: str) -> str:
    value = node.attr(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _input_features(node: NodeContext) -> SSAValue:
    """X as the op takes it: 2-D (1-D is one row), f32 or f64 (integers become f32)."""
    x = node.input(0)
    ty = node.input_type(0)
    if ty.get_num_dims() == 1:
        row = tensor([1, ty.get_shape()[0]], ty.element_type)
        x = node.emit(shape.ReshapeOp.create([x], result_types=[row])).output
    elif ty.get_num_dims() != 2:
        node.unsupported(f"input X must be 1-D or 2-D, got {ty}")
    name = node.input_type(0).element_type.name  # type: ignore[attr-defined]
    if name not in ("f32", "f64"):
        if not name.startswith("i"):
            node.unsupported(f"input X of element type {name} is not supported")
        x = node.emit(ew.CastOp.to(x, f32)).output
    return x


class _NodeTable:
    """ONNX (tree id, node id) node lists -> the op's global node tables."""

    def __init__(self, node: NodeContext) -> None:
        self.tree_ids = _ints(node, "nodes_treeids")
        self.node_ids = _ints(node, "nodes_nodeids")
        n = len(self.tree_ids)
        modes = [m.decode() if isinstance(m, bytes) else str(m) for m in node.attr("nodes_modes", [])]
        if len(modes) != n:
            node.unsupported("nodes_modes must have one entry per node")
        try:
            self.mode = np.asarray([NodeMode.from_onnx(m) for m in modes], np.int64)
        except Exception as e:  # noqa: BLE001  (GraphError: named mode)
            node.unsupported(str(e))
        self.feature = _ints(node, "nodes_featureids")
        threshold = _floats(node, "nodes_values")
        self.threshold = np.zeros(n) if threshold is None else threshold
        self.missing_true = _ints(node, "nodes_missing_value_tracks_true", [0] * n)
        true_ids = _ints(node, "nodes_truenodeids")
        false_ids = _ints(node, "nodes_falsenodeids")
        for name, arr in (("nodes_featureids", self.feature), ("nodes_values", self.threshold),
                          ("nodes_truenodeids", true_ids), ("nodes_falsenodeids", false_ids),
                          ("nodes_missing_value_tracks_true", self.missing_true),
                          ("nodes_nodeids", self.node_ids)):  # fmt: skip
            if len(arr) != n:
                node.unsupported(f"{name} must have one entry per node ({n}), has {len(arr)}")
        self.index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(self.tree_ids, self.node_ids))}
        if len(self.index) != n:
            node.unsupported("a (tree id, node id) pair is listed twice")
        branch = self.mode != NodeMode.LEAF
        self.true = np.full(n, -1, np.int64)
        self.false = np.full(n, -1, np.int64)
        for k in np.flatnonzero(branch):
            t = int(self.tree_ids[k])
            for out, ids in ((self.true, true_ids), (self.false, false_ids)):
                target = self.index.get((t, int(ids[k])))
                if target is None:
                    node.unsupported(f"tree {t} node {self.node_ids[k]} branches to a missing node {ids[k]}")
                out[k] = target
        # the root of a tree is its first listed node (as onnxruntime and onnx.reference)
        self.trees = sorted(set(int(t) for t in self.tree_ids))
        first: dict[int, int] = {}
        for k, t in enumerate(self.tree_ids):
            first.setdefault(int(t), k)
        self.roots = np.asarray([first[t] for t in self.trees], np.int64)

    def leaf_values(self, node: NodeContext, prefix: str, n_targets: int, fill: float) -> tuple[np.ndarray, np.ndarray]:
        """(nodes_leaf, leaf_values) from the `<prefix>_treeids/_nodeids/_ids/_weights`
        lists; a leaf without a weight for a target gets `fill` there."""
        tree_ids = _ints(node, f"{prefix}_treeids")
        node_ids = _ints(node, f"{prefix}_nodeids")
        target_ids = _ints(node, f"{prefix}_ids")
        weights = _floats(node, f"{prefix}_weights")
        if weights is None or not len(tree_ids) == len(node_ids) == len(target_ids) == len(weights):
            node.unsupported(f"{prefix}_treeids, _nodeids, _ids and _weights must have equal lengths")
        if len(target_ids) and (target_ids.min() < 0 or target_ids.max() >= n_targets):
            node.unsupported(f"a {prefix}_ids entry is outside [0, {n_targets})")
        leaves = np.flatnonzero(self.mode == NodeMode.LEAF)
        nodes_leaf = np.full(len(self.mode), -1, np.int64)
        nodes_leaf[leaves] = np.arange(len(leaves))
        values = np.full((len(leaves), n_targets), fill, np.float64)
        for t, i, k, w in zip(tree_ids, node_ids, target_ids, weights):
            at = self.index.get((int(t), int(i)))
            if at is None or self.mode[at] != NodeMode.LEAF:
                node.unsupported(f"a weight names tree {t} node {i}, which is not a leaf")
            row = nodes_leaf[at]
            values[row, k] = w if np.isnan(values[row, k]) else values[row, k] + w
        return nodes_leaf, values


def _leaf_dtype(values: np.ndarray) -> np.ndarray:
    """f32 when every weight is one (the ONNX list attributes are), else f64."""
    as32 = values.astype(np.float32)
    same = np.array_equal(as32.astype(np.float64), values, equal_nan=True)
    return as32 if same else values


def _emit_tree_op(node: NodeContext, x: SSAValue, table: _NodeTable, nodes_leaf: np.ndarray,
                  values: np.ndarray, base: np.ndarray, aggregate: str) -> SSAValue:  # fmt: skip
    op = TreeEnsembleOp.create(
        [x],
        aggregate=aggregate,
        base_values=base.astype(np.float64),
        leaf_values=_leaf_dtype(values),
        tree_roots=table.roots,
        nodes_mode=table.mode,
        nodes_feature=table.feature,
        nodes_threshold=table.threshold.astype(np.float64),
        nodes_true=table.true,
        nodes_false=table.false,
        nodes_missing_true=(table.missing_true != 0).astype(np.int64),
        nodes_leaf=nodes_leaf,
    )
    return node.emit(op).scores


def _base_values(node: NodeContext, n_targets: int) -> np.ndarray:
    base = _floats(node, "base_values")
    if base is None or len(base) == 0:
        return np.zeros(n_targets)
    if len(base) != n_targets:
        node.unsupported(f"base_values has {len(base)} entries, expected {n_targets}")
    return base


def _check_attrs(node: NodeContext, known: set[str]) -> None:
    extra = sorted(a for a in node._attrs if a not in known | _IGNORED)
    if extra:
        node.unsupported(f"attribute {extra[0]!r} is not supported")


_COMMON = {
    "nodes_treeids", "nodes_nodeids", "nodes_modes", "nodes_featureids", "nodes_values",
    "nodes_values_as_tensor", "nodes_truenodeids", "nodes_falsenodeids",
    "nodes_missing_value_tracks_true", "base_values", "base_values_as_tensor", "post_transform",
}  # fmt: skip


@converter("TreeEnsembleRegressor", domain=ML_DOMAIN)
def tree_ensemble_regressor(node: NodeContext) -> list[SSAValue]:
    _check_attrs(node, _COMMON | {"n_targets", "aggregate_function", "target_treeids",
                                  "target_nodeids", "target_ids", "target_weights",
                                  "target_weights_as_tensor"})  # fmt: skip
    aggregate = _string(node, "aggregate_function", "SUM")
    if aggregate not in AGGREGATES:
        node.unsupported(f"aggregate_function {aggregate!r} is not one of {AGGREGATES}")
    n_targets = node.int("n_targets", 1)
    table = _NodeTable(node)
    fill = np.nan if aggregate in ("MIN", "MAX") else 0.0
    nodes_leaf, values = table.leaf_values(node, "target", n_targets, fill)
    if fill == 0.0:
        values = np.nan_to_num(values, nan=0.0)
    x = _input_features(node)
    scores = _emit_tree_op(node, x, table, nodes_leaf, values, _base_values(node, n_targets), aggregate)
    return [post_transform(node, scores, _string(node, "post_transform", "NONE"))]


@converter("TreeEnsembleClassifier", domain=ML_DOMAIN)
def tree_ensemble_classifier(node: NodeContext) -> list[SSAValue]:
    _check_attrs(node, _COMMON | {"class_treeids", "class_nodeids", "class_ids",
                                  "class_weights", "class_weights_as_tensor",
                                  "classlabels_int64s", "classlabels_strings"})  # fmt: skip
    ints, strings = node.attr("classlabels_int64s"), node.attr("classlabels_strings")
    if (ints is None) == (strings is None):
        node.unsupported("exactly one of classlabels_int64s and classlabels_strings is required")
    labels = [int(v) for v in ints] if ints is not None else [
        s.decode() if isinstance(s, bytes) else str(s) for s in strings
    ]
    if len(labels) < 2:
        node.unsupported(f"a classifier needs at least two class labels, has {len(labels)}")
    class_ids = _ints(node, "class_ids")
    binary = len(labels) == 2 and len(set(class_ids.tolist())) <= 1
    n_scored = 1 if binary else len(labels)
    table = _NodeTable(node)
    nodes_leaf, values = table.leaf_values(node, "class", n_scored, 0.0)
    if binary and len(class_ids) and class_ids[0] != 0:
        node.unsupported("a binary classifier must score class id 0")
    transform = _string(node, "post_transform", "NONE")
    base = _base_values(node, n_scored) if not binary else _binary_base(node)
    x = _input_features(node)
    scores = _emit_tree_op(node, x, table, nodes_leaf, values, base, "SUM")
    if binary:
        scores = complete_binary(node, scores, transform)
    probabilities = post_transform(node, scores, transform)
    return [class_labels(node, probabilities, labels), probabilities]


def _binary_base(node: NodeContext) -> np.ndarray:
    base = _floats(node, "base_values")
    if base is None or len(base) == 0:
        return np.zeros(1)
    if len(base) not in (1, 2):
        node.unsupported(f"a binary classifier has 1 or 2 base values, got {len(base)}")
    return base[-1:] if len(base) == 2 else base


def complete_binary(node: NodeContext, score: SSAValue, transform: str) -> SSAValue:
    """One score column s -> [1 - s, s] (NONE, PROBIT) or [-s, s] (other transforms),
    as onnxruntime and onnx.reference complete a binary classifier."""
    if transform in ("NONE", "PROBIT"):
        one = node.emit_constant(np.ones((1, 1), np.float32))
        other = node.emit(ew.SubOp.create([one, score])).output
    else:
        other = node.emit(ew.NegOp.create([score])).output
    return node.emit(shape.ConcatOp.create([other, score], axis=1)).output


def post_transform(node: NodeContext, scores: SSAValue, transform: str) -> SSAValue:
    """The ONNX-ML post transform of a scores matrix (rows x classes), as graph ops."""
    if transform not in POST_TRANSFORMS:
        node.unsupported(f"post_transform {transform!r} is not one of {POST_TRANSFORMS}")
    if transform == "NONE":
        return scores
    if transform == "LOGISTIC":
        return node.emit(ew.SigmoidOp.create([scores])).output
    if transform == "SOFTMAX":
        return node.emit(nn.SoftmaxOp.create([scores], axes=[1])).output
    if transform == "SOFTMAX_ZERO":
        return _softmax_zero(node, scores)
    return _probit(node, scores)


def _softmax_zero(node: NodeContext, s: SSAValue) -> SSAValue:
    """Softmax over the non-zero scores of each row; zero scores give 0 (onnxruntime's
    SOFTMAX_ZERO)."""
    zero = node.emit_constant(np.zeros((1, 1), np.float32))
    nonzero = node.emit(ew.NotOp.create([node.emit(ew.EqualOp.create([s, zero])).output])).output
    row_max = node.emit(rd.ReduceMaxOp.create([s], axes=[1], keepdims=True)).output
    e = node.emit(ew.ExpOp.create([node.emit(ew.SubOp.create([s, row_max])).output])).output
    e = node.emit(ew.WhereOp.create([nonzero, e, zero])).output
    total = node.emit(rd.ReduceSumOp.create([e], axes=[1], keepdims=True)).output
    return node.emit(ew.DivOp.create([e, total])).output


def _probit(node: NodeContext, p: SSAValue) -> SSAValue:
    """sqrt(2) * erfinv(2p - 1), erfinv by onnxruntime's approximation (Winitzki, a =
    0.147): sign(y) * sqrt(sqrt(v^2 - l / a) - v), l = log((1 - y)(1 + y)), v = 2 /
    (pi a) + l / 2."""

    def c(v: float) -> SSAValue:
        return node.emit_constant(np.full((1, 1), v, np.float32))

    def binary(op: type, a: SSAValue, b: SSAValue) -> SSAValue:
        return node.emit(op.create([a, b])).output

    def unary(op: type, a: SSAValue) -> SSAValue:
        return node.emit(op.create([a])).output

    a = 0.147
    y = binary(ew.SubOp, binary(ew.MulOp, c(2.0), p), c(1.0))
    log = unary(ew.LogOp, binary(ew.MulOp, binary(ew.SubOp, c(1.0), y), binary(ew.AddOp, c(1.0), y)))
    v = binary(ew.AddOp, c(2 / (math.pi * a)), binary(ew.MulOp, c(0.5), log))
    inner = binary(ew.SubOp, binary(ew.MulOp, v, v), binary(ew.MulOp, c(1 / a), log))
    root = unary(ew.SqrtOp, binary(ew.SubOp, unary(ew.SqrtOp, inner), v))
    return binary(ew.MulOp, c(math.sqrt(2.0)), binary(ew.MulOp, unary(ew.SignOp, y), root))


def class_labels(node: NodeContext, probabilities: SSAValue, labels: list[int] | list[str]) -> SSAValue:
    """argmax over classes (the first on ties), mapped to integer labels; for string
    labels, the index (the strings go to the result's `mlc.labels`)."""
    index = node.emit(rd.ArgMaxOp.create([probabilities], axis=1, keepdims=False,
                                         select_last_index=False)).output  # fmt: skip
    if isinstance(labels[0], str):
        record_string_labels(node, list(map(str, labels)))
        return index
    if labels == list(range(len(labels))):
        return index
    table = node.emit_constant(np.asarray(labels, np.int64))
    return node.emit(shape.GatherOp.create([table, index], axis=0)).output


def record_string_labels(node: NodeContext, labels: list[str]) -> None:
    """Remember that the node's first output holds indices into `labels`."""
    node.string_labels[node.node.output[0]] = labels


# --------------------------------------------------------------------------- TreeEnsemble (ml 5)

#: `TreeEnsemble`'s integer codes (ai.onnx.ml opset 5)
V5_AGGREGATES = ("AVERAGE", "SUM", "MIN", "MAX")
V5_MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
            "BRANCH_MEMBER")  # fmt: skip
_V5_MEMBER = 6

_V5_ATTRS = {
    "aggregate_function", "leaf_targetids", "leaf_weights", "membership_values", "n_targets",
    "nodes_falseleafs", "nodes_falsenodeids", "nodes_featureids", "nodes_missing_value_tracks_true",
    "nodes_modes", "nodes_splits", "nodes_trueleafs", "nodes_truenodeids", "post_transform",
    "tree_roots",
}  # fmt: skip


def _tensor_values(node: NodeContext, name: str, required: bool = True) -> np.ndarray | None:
    """A tensor attribute (or, leniently, a list) as a flat numpy array."""
    value = node.attr(name)
    if value is None:
        if required:
            node.unsupported(f"attribute '{name}' is required")
        return None
    array = numpy_helper.to_array(value) if hasattr(value, "data_type") else np.asarray(value)
    return np.asarray(array).reshape(-1)


def _code(node: NodeContext, name: str, names: Sequence[str], default: int) -> str:
    """An integer enumeration attribute as its name."""
    value = node.int(name, default)
    if not 0 <= value < len(names):
        node.unsupported(f"{name}={value} is not one of 0..{len(names) - 1} ({', '.join(names)})")
    return names[value]


def _member_sets(node: NodeContext, modes: np.ndarray) -> dict[int, list[float]]:
    """The set of each BRANCH_MEMBER node: `membership_values` split at its NaNs, in the
    order the member nodes appear in `nodes_modes`."""
    member_nodes = np.flatnonzero(modes == _V5_MEMBER).tolist()
    if not member_nodes:
        return {}
    values = _tensor_values(node, "membership_values", required=False)
    if values is None:
        node.unsupported("BRANCH_MEMBER nodes need the attribute 'membership_values'")
    sets: list[list[float]] = []
    current: list[float] = []
    for v in values.astype(np.float64):
        if np.isnan(v):
            sets.append(current)
            current = []
        else:
            current.append(float(v))
    if current:  # the last set need not end with a NaN
        sets.append(current)
    if len(sets) != len(member_nodes):
        node.unsupported(f"membership_values holds {len(sets)} NaN-delimited sets for "
                         f"{len(member_nodes)} BRANCH_MEMBER nodes")  # fmt: skip
    return dict(zip(member_nodes, sets))


class _V5NodeTable(_NodeTable):
    """`TreeEnsemble`'s interior-node (`nodes_*`) and leaf (`leaf_*`) lists -> the op's node
    tables, keeping what the roots reach: one branch node per interior node (a BRANCH_MEMBER
    node becomes a chain of EQ nodes, one per member, whose true edges all go to its true
    child: exact) and one LEAF node, with its own `leaf_values` row, per leaf."""

    def __init__(self, node: NodeContext, n_targets: int, fill: float) -> None:
        modes = _tensor_values(node, "nodes_modes")
        assert modes is not None
        modes = modes.astype(np.int64)
        n = len(modes)
        splits = _tensor_values(node, "nodes_splits")
        assert splits is not None
        splits = splits.astype(np.float64)
        feature = _ints(node, "nodes_featureids")
        true_ids, false_ids = _ints(node, "nodes_truenodeids"), _ints(node, "nodes_falsenodeids")
        true_leaf, false_leaf = _ints(node, "nodes_trueleafs"), _ints(node, "nodes_falseleafs")
        missing = _ints(node, "nodes_missing_value_tracks_true", [0] * n)
        for name, arr in (("nodes_splits", splits), ("nodes_featureids", feature),
                          ("nodes_truenodeids", true_ids), ("nodes_falsenodeids", false_ids),
                          ("nodes_trueleafs", true_leaf), ("nodes_falseleafs", false_leaf),
                          ("nodes_missing_value_tracks_true", missing)):  # fmt: skip
            if len(arr) != n:
                node.unsupported(f"{name} must have one entry per node ({n}), has {len(arr)}")
        bad = modes[(modes < 0) | (modes >= len(V5_MODES))]
        if bad.size:
            top = len(V5_MODES) - 1
            node.unsupported(f"nodes_modes holds {int(bad[0])}, not a mode (0..{top})")
        members = _member_sets(node, modes)
        targets = _ints(node, "leaf_targetids")
        weights = _tensor_values(node, "leaf_weights")
        assert weights is not None
        n_leaves = len(targets)
        if len(weights) != n_leaves:
            node.unsupported(f"leaf_weights has {len(weights)} entries, leaf_targetids {n_leaves}")
        if n_leaves and (targets.min() < 0 or targets.max() >= n_targets):
            node.unsupported(f"a leaf_targetids entry is outside [0, {n_targets})")

        mode: list[int] = []
        feat: list[int] = []
        thresh: list[float] = []
        miss: list[int] = []
        true: list[int] = []
        false: list[int] = []
        leaf: list[int] = []
        rows: list[int] = []  # the ONNX leaf of each leaf_values row
        at_node: dict[int, int] = {}
        at_leaf: dict[int, int] = {}
        pending: list[int] = []

        def add(m: int, f: int, t: float, mt: int) -> int:
            mode.append(m)
            feat.append(f)
            thresh.append(t)
            miss.append(mt)
            true.append(-1)
            false.append(-1)
            leaf.append(-1)
            return len(mode) - 1

        def to_leaf(j: int, where: str) -> int:
            if not 0 <= j < n_leaves:
                node.unsupported(f"{where} names leaf {j}, but there are {n_leaves} leaves")
            if j not in at_leaf:
                at_leaf[j] = add(NodeMode.LEAF, 0, 0.0, 0)
                leaf[at_leaf[j]] = len(rows)
                rows.append(j)
            return at_leaf[j]

        def to_node(i: int, where: str) -> int:
            if not 0 <= i < n:
                node.unsupported(f"{where} names node {i}, but there are {n} nodes")
            if i not in at_node:
                f, mt = int(feature[i]), int(missing[i] != 0)
                if modes[i] == _V5_MEMBER:  # an empty set: one test that never holds
                    chain = members[i] or [math.nan]
                    at_node[i] = add(NodeMode.EQ, f, chain[0], mt)
                    for v in chain[1:]:
                        add(NodeMode.EQ, f, v, mt)
                else:
                    at_node[i] = add(int(modes[i]), f, float(splits[i]), mt)
                pending.append(i)
            return at_node[i]

        roots: list[int] = []
        for t, r in enumerate(_ints(node, "tree_roots").tolist()):
            if not 0 <= r < n:
                node.unsupported(f"tree_roots[{t}] names node {r}, but there are {n} nodes")
            if true_leaf[r] and false_leaf[r] and true_ids[r] == false_ids[r]:
                roots.append(to_leaf(int(true_ids[r]), f"tree {t} (a lone leaf)"))
            else:
                roots.append(to_node(r, f"tree_roots[{t}]"))
        if not roots:
            node.unsupported("tree_roots is empty")
        while pending:
            i = pending.pop()
            kids = [
                (to_leaf if is_leaf else to_node)(int(ids[i]), f"node {i}'s {side} branch")
                for side, is_leaf, ids in (("true", true_leaf[i], true_ids),
                                           ("false", false_leaf[i], false_ids))
            ]  # fmt: skip
            first = at_node[i]
            length = (len(members[i]) or 1) if modes[i] == _V5_MEMBER else 1
            for k in range(first, first + length):
                true[k] = kids[0]
                false[k] = k + 1 if k + 1 < first + length else kids[1]

        self.roots = np.asarray(roots, np.int64)
        self.mode = np.asarray(mode, np.int64)
        self.feature = np.asarray(feat, np.int64)
        self.threshold = np.asarray(thresh, np.float64)
        self.missing_true = np.asarray(miss, np.int64)
        self.true = np.asarray(true, np.int64)
        self.false = np.asarray(false, np.int64)
        self.leaf = np.asarray(leaf, np.int64)
        self.values = np.full((len(rows), n_targets), fill, np.float64)
        self.values[np.arange(len(rows)), targets[rows]] = weights.astype(np.float64)[rows]


@converter("TreeEnsemble", domain=ML_DOMAIN)
def tree_ensemble(node: NodeContext) -> list[SSAValue]:
    """`TreeEnsemble` (ai.onnx.ml 5): scores of X's type. post_transform codes as the ONNX
    spec (1 SOFTMAX, 2 LOGISTIC: onnxruntime reads them swapped, and applies none but PROBIT
    to a single target); f64 scores are the op's f32 scores, widened."""
    _check_attrs(node, _V5_ATTRS)
    aggregate = _code(node, "aggregate_function", V5_AGGREGATES, 1)
    transform = _code(node, "post_transform", POST_TRANSFORMS, 0)
    targets = _ints(node, "leaf_targetids")
    n_targets = node.int("n_targets", int(targets.max()) + 1 if len(targets) else 1)
    if n_targets < 1:
        node.unsupported(f"n_targets must be positive, got {n_targets}")
    fill = np.nan if aggregate in ("MIN", "MAX") else 0.0
    table = _V5NodeTable(node, n_targets, fill)
    x = _input_features(node)
    scores = _emit_tree_op(node, x, table, table.leaf, table.values, np.zeros(n_targets), aggregate)
    scores = post_transform(node, scores, transform)
    element = node.input_type(0).element_type
    if element.name == "f64":  # type: ignore[attr-defined]
        scores = node.emit(ew.CastOp.to(scores, element)).output
    return [scores]
