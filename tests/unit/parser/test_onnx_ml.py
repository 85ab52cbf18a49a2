"""ONNX-ML converters (`TreeEnsemble` opset 5, the linear models and preprocessors,
ZipMap) against onnxruntime: labels exact, scores to rtol 1e-5. Models are built
with onnx.helper or exported from scikit-learn with skl2onnx.

Where onnxruntime has a known bug (TreeEnsemble's post_transform codes 1 and 2 read
swapped; no transform but PROBIT on a single target), mlc follows the ONNX spec and the
test checks against the transform applied to onnxruntime's raw scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.parser.onnx import OnnxImportError

ML = "ai.onnx.ml"
RTOL, ATOL = 1e-5, 1e-6
F32, F64, I64, STR = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.STRING


def _model(
    node: onnx.NodeProto,
    x: np.ndarray,
    outputs: Sequence[tuple[str, int]],
    ml_opset: int,
) -> onnx.ModelProto:
    x_type = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(
        [node],
        "ml",
        [helper.make_tensor_value_info("X", x_type, list(x.shape))],
        [helper.make_tensor_value_info(name, ty, None) for name, ty in outputs],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(ML, ml_opset)]
    return helper.make_model(graph, opset_imports=opsets)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def _mlc(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    shapes = {model.graph.input[0].name: x.shape}
    return mlc.interpret(mlc.import_onnx(model, input_shapes=shapes), x)


def _same(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape
        if w.dtype.kind in "fc":
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:  # labels: exact
            assert g.tolist() == w.tolist()


def _check(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """mlc's outputs equal onnxruntime's; returns them."""
    got = _mlc(model, x)
    _same(got, _ort(model, x))
    return got


def _to_onnx() -> Any:
    """skl2onnx's `to_onnx`: the tests that export scikit-learn models skip without it."""
    pytest.importorskip("sklearn")
    return pytest.importorskip("skl2onnx").to_onnx


def _refusal(model: onnx.ModelProto, x_shape: Sequence[int] | None = None) -> str:
    shapes = {model.graph.input[0].name: x_shape} if x_shape else None
    with pytest.raises(OnnxImportError) as info:
        mlc.import_onnx(model, input_shapes=shapes)
    return str(info.value)


# --------------------------------------------------------------------------- TreeEnsemble (5)


def _tree_ensemble(x: np.ndarray, dtype: Any = np.float32, **attrs: Any) -> onnx.ModelProto:
    """A TreeEnsemble node over X; float attributes become tensors of `dtype`."""
    for name in ("leaf_weights", "nodes_splits", "membership_values"):
        if name in attrs:
            attrs[name] = numpy_helper.from_array(np.asarray(attrs[name], dtype), name)
    attrs["nodes_modes"] = numpy_helper.from_array(
        np.asarray(attrs["nodes_modes"], np.uint8), "nodes_modes"
    )
    node = helper.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML, name="forest", **attrs)
    return _model(node, x, [("Y", helper.np_dtype_to_tensor_dtype(x.dtype))], 5)


#: two trees over three targets using every comparison mode
FOREST: dict[str, Any] = dict(
    n_targets=3,
    tree_roots=[0, 3],
    nodes_modes=[0, 1, 2, 3, 4, 5],
    nodes_featureids=[0, 1, 2, 0, 1, 2],
    nodes_splits=[0.5, -0.25, 0.0, 0.1, 1.0, 2.0],
    nodes_truenodeids=[1, 0, 2, 4, 4, 6],
    nodes_trueleafs=[0, 1, 1, 0, 1, 1],
    nodes_falsenodeids=[2, 1, 3, 5, 5, 7],
    nodes_falseleafs=[0, 1, 1, 0, 1, 1],
    nodes_missing_value_tracks_true=[1, 0, 0, 0, 1, 1],
    leaf_targetids=[0, 1, 2, 0, 1, 2, 0, 1],
    leaf_weights=[1.5, -2.0, 0.25, 3.0, 0.5, -1.25, 2.0, 4.0],
)


def _rows(n: int, features: int, seed: int = 0, nan: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    x[::5, 1] = 1.0  # hits the EQ / NEQ thresholds
    x[::7, 2] = 2.0
    if nan:
        x[3::6, 0] = np.nan
        x[4::9, 1] = np.nan
        x[5::8, 2] = np.nan
    return x


@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
def test_tree_ensemble_aggregates_modes_and_nan(aggregate: int) -> None:
    x = _rows(40, 3)
    _check(_tree_ensemble(x, aggregate_function=aggregate, **FOREST), x)


def test_tree_ensemble_f64() -> None:
    x = _rows(20, 3).astype(np.float64)
    got = _check(_tree_ensemble(x, np.float64, **FOREST), x)
    assert got[0].dtype == np.float64


def test_tree_ensemble_post_transforms() -> None:
    x = _rows(30, 3)
    raw = _ort(_tree_ensemble(x, **FOREST), x)[0].astype(np.float64)
    e = np.exp(raw - raw.max(axis=1, keepdims=True))
    # the ONNX codes: 1 SOFTMAX, 2 LOGISTIC (onnxruntime reads them swapped)
    expected = {1: e / e.sum(axis=1, keepdims=True), 2: 1 / (1 + np.exp(-raw))}
    for code, want in expected.items():
        got = _mlc(_tree_ensemble(x, post_transform=code, **FOREST), x)[0]
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    for code in (3, 4):  # SOFTMAX_ZERO, PROBIT: as onnxruntime
        _check(_tree_ensemble(x, post_transform=code, **FOREST), x)


def test_tree_ensemble_set_membership_is_a_chain_of_equalities() -> None:
    members = dict(
        n_targets=3,
        tree_roots=[0],
        nodes_modes=[6, 6],
        nodes_featureids=[0, 0],
        nodes_splits=[np.nan, np.nan],
        nodes_truenodeids=[0, 1],
        nodes_trueleafs=[1, 1],
        nodes_falsenodeids=[1, 2],
        nodes_falseleafs=[0, 1],
        leaf_targetids=[0, 1, 2],
        leaf_weights=[1.0, 10.0, 100.0],
        membership_values=[0.0, 1.0, 9.0, np.nan, 5.0, np.nan],
    )
    x = np.array([[0.0], [1.0], [9.0], [5.0], [7.0], [np.nan], [-0.0]], np.float32)
    _check(_tree_ensemble(x, **members), x)
    _check(_tree_ensemble(x, nodes_missing_value_tracks_true=[0, 1], **members), x)
    # an empty set never holds (onnxruntime refuses it; onnx.reference agrees with mlc)
    members["membership_values"] = [0.0, 1.0, np.nan, np.nan]
    got = _mlc(_tree_ensemble(x, **members), x)[0]
    assert got[:, 2].tolist() == [0, 0, 100, 100, 100, 100, 0]


def test_tree_ensemble_lone_leaf_tree_and_shared_leaf() -> None:
    x = _rows(10, 3)
    lone = dict(FOREST, tree_roots=[0, 3, 6], nodes_modes=[*FOREST["nodes_modes"], 0])
    for name, extra in (("nodes_featureids", 0), ("nodes_splits", 0.0),
                        ("nodes_missing_value_tracks_true", 0), ("nodes_truenodeids", 5),
                        ("nodes_falsenodeids", 5), ("nodes_trueleafs", 1),
                        ("nodes_falseleafs", 1)):  # fmt: skip
        lone[name] = [*FOREST[name], extra]
    _check(_tree_ensemble(x, **lone), x)
    shared = dict(FOREST, nodes_falsenodeids=[2, 0, 3, 5, 5, 7])  # node 1's leaves: both 0
    _check(_tree_ensemble(x, **shared), x)


V5_LISTS = ("tree_roots", "nodes_modes", "nodes_featureids", "nodes_splits",
            "nodes_truenodeids", "nodes_trueleafs", "nodes_falsenodeids", "nodes_falseleafs",
            "nodes_missing_value_tracks_true", "leaf_targetids", "leaf_weights")  # fmt: skip
V3_COLUMNS = ("treeids", "nodeids", "modes", "featureids", "values", "truenodeids", "falsenodeids")


def _tree_v5(model: onnx.ModelProto) -> onnx.ModelProto:
    """skl2onnx's TreeEnsembleRegressor/Classifier (ml opset 1) as TreeEnsemble (ml opset
    5) of the raw scores: each tree copied once per target, its leaves carrying that
    target's weight (SUM; an AVERAGE becomes SUM of weights / trees)."""
    (old,) = [n for n in model.graph.node if n.domain == ML]
    a = {x.name: helper.get_attribute_value(x) for x in old.attribute}
    prefix = "target" if old.op_type == "TreeEnsembleRegressor" else "class"
    n_targets = a.get("n_targets") or len(a.get("classlabels_int64s", []))
    trees = sorted(set(a["nodes_treeids"]))
    scale = 1 / len(trees) if a.get("aggregate_function", b"SUM") == b"AVERAGE" else 1
    weight = {}
    for t, n, k, w in zip(
        a[f"{prefix}_treeids"], a[f"{prefix}_nodeids"], a[f"{prefix}_ids"], a[f"{prefix}_weights"]
    ):
        weight[t, n, k] = weight.get((t, n, k), 0.0) + w * scale
    codes = {b"BRANCH_LEQ": 0, b"BRANCH_LT": 1, b"BRANCH_GTE": 2, b"BRANCH_GT": 3}
    v5: dict[str, list[Any]] = {k: [] for k in V5_LISTS}
    missing = a.get("nodes_missing_value_tracks_true", [0] * len(a["nodes_treeids"]))
    rows = list(zip(*(a[f"nodes_{k}"] for k in V3_COLUMNS), missing))
    for k in range(n_targets):
        for t in trees:
            nodes = {r[1]: r for r in rows if r[0] == t}
            branch = [i for i in nodes if nodes[i][2] != b"LEAF"]
            index = {i: len(v5["nodes_modes"]) + j for j, i in enumerate(branch)}

            def ref(
                i: int, t: int = t, k: int = k, index: dict[int, int] = index
            ) -> tuple[int, int]:
                if i in index:
                    return index[i], 0
                v5["leaf_targetids"].append(k)
                v5["leaf_weights"].append(weight.get((t, i, k), 0.0))
                return len(v5["leaf_weights"]) - 1, 1

            v5["tree_roots"].append(index[branch[0]])  # skl2onnx lists the root first
            for i in branch:
                _, _, mode, feature, value, _, _, tracks_true = nodes[i]
                v5["nodes_modes"].append(codes[mode])
                v5["nodes_featureids"].append(feature)
                v5["nodes_splits"].append(value)
                v5["nodes_missing_value_tracks_true"].append(tracks_true)
            for i in branch:
                (yes, yes_leaf), (no, no_leaf) = ref(nodes[i][5]), ref(nodes[i][6])
                v5["nodes_truenodeids"].append(yes)
                v5["nodes_trueleafs"].append(yes_leaf)
                v5["nodes_falsenodeids"].append(no)
                v5["nodes_falseleafs"].append(no_leaf)
    x = np.zeros((1, model.graph.input[0].type.tensor_type.shape.dim[1].dim_value), np.float32)
    m = _tree_ensemble(x, n_targets=n_targets, **v5)
    m.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    return m


def test_tree_ensemble_from_sklearn_random_forests() -> None:
    to_onnx = _to_onnx()
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    x, y = make_classification(300, 6, n_informative=4, n_classes=3, random_state=0)
    x = x.astype(np.float32)
    test = _rows(50, 6, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        regressor = RandomForestRegressor(5, max_depth=5, random_state=0).fit(x, x[:, :2] @ [1, -2])
        classifier = RandomForestClassifier(5, max_depth=5, random_state=0).fit(x, y)
        opsets = {"": 18, ML: 3}
        for est, options in ((regressor, None), (classifier, {"zipmap": False})):
            original = to_onnx(est, x[:1], target_opset=opsets, options=options)
            v5 = _tree_v5(original)
            scores = _check(v5, test)[0]  # against onnxruntime's TreeEnsemble
            np.testing.assert_allclose(scores, _ort(original, test)[-1], rtol=RTOL, atol=ATOL)


def test_tree_ensemble_malformed_nodes_are_refused_naming_the_node() -> None:
    x = _rows(4, 3)
    cases = {
        "names node 9, but there are 6 nodes": dict(FOREST, nodes_truenodeids=[9, 0, 2, 4, 4, 6]),
        "names leaf 8, but there are 8 leaves": dict(FOREST, nodes_falsenodeids=[2, 1, 3, 5, 5, 8]),
        "tree_roots[1] names node 6": dict(FOREST, tree_roots=[0, 6]),
        "nodes_modes holds 9": dict(FOREST, nodes_modes=[0, 1, 2, 3, 4, 9]),
        "need the attribute 'membership_values'": dict(FOREST, nodes_modes=[0, 1, 2, 3, 4, 6]),
        "a leaf_targetids entry is outside [0, 3)": dict(
            FOREST, leaf_targetids=[0, 1, 2, 0, 1, 2, 0, 3]
        ),
        "nodes_featureids must have one entry per node": dict(FOREST, nodes_featureids=[0, 1]),
        "has a cycle": dict(FOREST, nodes_trueleafs=[0, 0, 1, 0, 1, 1]),
    }
    for reason, attrs in cases.items():
        message = _refusal(_tree_ensemble(x, **attrs))
        assert "forest" in message and "TreeEnsemble" in message and reason in message, message
        assert "Traceback" not in message and "internal error" not in message


# --------------------------------------------------------------------------- linear models


def _node(op: str, outputs: Sequence[str] = ("Y",), **attrs: Any) -> onnx.NodeProto:
    return helper.make_node(op, ["X"], list(outputs), domain=ML, name=op.lower(), **attrs)


def _classifier(x: np.ndarray, string_labels: bool = False, **attrs: Any) -> onnx.ModelProto:
    node = _node("LinearClassifier", ("label", "scores"), **attrs)
    return _model(node, x, [("label", STR if string_labels else I64), ("scores", F32)], 1)


X4 = np.array([[1.0, -2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, -4.0, 2.0], [0.5, 0.25, -3.0],
               [40.0, -10.0, 12.0], [np.nan, 1.0, 2.0]], np.float32)  # fmt: skip


@pytest.mark.parametrize("transform", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_classifier_multiclass(transform: str) -> None:
    attrs = dict(coefficients=[0.1, 0.2, 0.3, -0.1, 0.0, 0.2, 0.0, -0.5, 0.1],
                 intercepts=[0.05, 0.0, 0.1], post_transform=transform)  # fmt: skip
    _check(_classifier(X4, classlabels_ints=[3, 7, 9], **attrs), X4)
    got = _check(_classifier(X4, True, classlabels_strings=["a", "b", "c"], **attrs), X4)
    assert set(got[0].tolist()) <= {"a", "b", "c"}


@pytest.mark.parametrize("transform", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"])
def test_linear_classifier_binary(transform: str) -> None:
    attrs = dict(coefficients=[0.1, 0.2, 0.3], intercepts=[0.05], post_transform=transform)
    _check(_classifier(X4, classlabels_ints=[3, 7], **attrs), X4)
    _check(_classifier(X4, True, classlabels_strings=["no", "yes"], **attrs), X4)
    x = np.arange(6, dtype=np.int64).reshape(2, 3) - 3  # integer X is computed in f32
    _check(_classifier(x, classlabels_ints=[0, 1], **attrs), x)


def test_linear_classifier_refusals() -> None:
    binary_probit = _classifier(X4, classlabels_ints=[0, 1], coefficients=[1.0, 2.0, 3.0],
                                post_transform="PROBIT")  # fmt: skip
    assert "PROBIT" in _refusal(binary_probit)
    rows = _classifier(X4, classlabels_ints=[0, 1, 2], coefficients=[1.0, 2.0, 3.0] * 2)
    assert "2 coefficient rows for 3 class labels" in _refusal(rows)
    ragged = _classifier(X4, classlabels_ints=[0, 1], coefficients=[1.0, 2.0])
    assert "not a multiple of the 3 input features" in _refusal(ragged)


@pytest.mark.parametrize("transform", ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"])
def test_linear_regressor(transform: str) -> None:
    two = _node("LinearRegressor", coefficients=[0.1, 0.2, 0.3, -0.1, 0.0, 0.2],
                intercepts=[0.05, 0.0], targets=2, post_transform=transform)  # fmt: skip
    _check(_model(two, X4, [("Y", F32)], 1), X4)
    one = _node("LinearRegressor", coefficients=[0.1, 0.2, 0.3], post_transform=transform)
    model = _model(one, X4, [("Y", F32)], 1)
    if transform in ("NONE", "PROBIT"):
        _check(model, X4)
    else:  # onnxruntime applies no other transform to one target (onnxruntime#26596)
        raw = _ort(
            _model(_node("LinearRegressor", coefficients=[0.1, 0.2, 0.3]), X4, [("Y", F32)], 1), X4
        )[0]
        want = {"LOGISTIC": 1 / (1 + np.exp(-raw)), "SOFTMAX": np.where(np.isnan(raw), np.nan, 1.0),
                "SOFTMAX_ZERO": np.where(np.isnan(raw) | (raw == 0), np.nan, 1.0)}  # fmt: skip
        np.testing.assert_allclose(_mlc(model, X4)[0], want[transform], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("norm", ["MAX", "L1", "L2"])
def test_normalizer(norm: str) -> None:
    x = np.concatenate([X4, [[-1.0, -2.0, -4.0], [-1.0, 0.0, 0.0], [np.nan] * 3]]).astype(
        np.float32
    )
    _check(_model(_node("Normalizer", norm=norm), x, [("Y", F32)], 1), x)
    _check(_model(_node("Normalizer", norm=norm), x[0], [("Y", F32)], 1), x[0])
    x64 = x.astype(np.float64)
    _check(_model(_node("Normalizer", norm=norm), x64, [("Y", F32)], 1), x64)


def test_scaler_and_binarizer() -> None:
    for x in (X4, X4.astype(np.float64), np.arange(12, dtype=np.int64).reshape(4, 3)):
        node = _node("Scaler", offset=[1.0, -2.0, 0.5], scale=[2.0, 0.5, -3.0])
        _check(_model(node, x, [("Y", F32)], 1), x)
        _check(_model(_node("Scaler", offset=[1.5], scale=[0.25]), x, [("Y", F32)], 1), x)
    x = np.nan_to_num(X4)  # onnxruntime refuses a NaN
    _check(_model(_node("Binarizer", threshold=0.25), x, [("Y", F32)], 1), x)
    _check(_model(_node("Binarizer"), x[0], [("Y", F32)], 1), x[0])
    got = _mlc(_model(_node("Binarizer"), X4, [("Y", F32)], 1), X4)[0]
    assert got[-1].tolist() == [0.0, 1.0, 1.0]  # NaN > 0 is false (onnx.reference)
    ints = np.array([[-2, -1, 0, 1, 2]], np.int64)
    got = _mlc(_model(_node("Binarizer", threshold=-0.5), ints, [("Y", I64)], 1), ints)[0]
    assert got.dtype == np.int64 and got.tolist() == [[0, 0, 1, 1, 1]]


def test_sklearn_linear_models_and_preprocessors() -> None:
    to_onnx = _to_onnx()
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import Normalizer, StandardScaler

    x, y = make_classification(200, 5, n_informative=3, n_classes=3, random_state=0)
    x = x.astype(np.float32)
    test = x[:40]
    words = np.array(["cat", "dog", "emu"])[y]
    opsets = {"": 18, ML: 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimators = [
            (LogisticRegression().fit(x, y % 2), {"zipmap": False}),
            (LogisticRegression().fit(x, y), {"zipmap": False}),
            (LogisticRegression().fit(x, words), {"zipmap": False}),
            (LinearRegression().fit(x, x[:, :2] @ [1.0, 2.0] + 3.0), None),
            (Normalizer("l1").fit(x), None),
            (Normalizer("l2").fit(x), None),
            (StandardScaler().fit(x), None),
        ]
        for est, options in estimators:
            model = to_onnx(est, x[:1], target_opset=opsets, options=options)
            _check(model, test)
    got = _mlc(
        to_onnx(estimators[2][0], x[:1], target_opset=opsets, options={"zipmap": False}), test
    )
    assert set(got[0].tolist()) <= {"cat", "dog", "emu"}


def test_zipmap_outputs_come_back_as_dicts_as_onnxruntime_gives_them() -> None:
    """skl2onnx's default export (ZipMap on the probabilities, an Identity renaming the
    string labels): interpreted, compiled and exported-then-loaded, each row a dict."""
    to_onnx = _to_onnx()
    from sklearn.linear_model import LogisticRegression

    x = np.arange(40, dtype=np.float32).reshape(20, 2) / 7
    for labels in (np.arange(20) % 3, np.array(["cat", "dog", "emu"])[np.arange(20) % 3]):
        model = to_onnx(LogisticRegression().fit(x, labels), x[:1], target_opset={"": 18, ML: 1})
        want = _ort(model, x)
        module = mlc.import_onnx(model, input_shapes={"X": x.shape})
        for got in (mlc.interpret(module, x), mlc.compile(module)(x)):
            assert got[0].tolist() == want[0].tolist()
            assert [sorted(row) for row in got[1]] == [sorted(row) for row in want[1]]
            for g, w in zip(got[1], want[1]):
                np.testing.assert_allclose(
                    [g[k] for k in w], list(w.values()), rtol=RTOL, atol=ATOL
                )


def test_zipmap_needs_one_column_per_key() -> None:
    graph = helper.make_graph(
        [helper.make_node("ZipMap", ["P"], ["Z"], domain=ML, classlabels_int64s=[0, 1, 2])],
        "g",
        [helper.make_tensor_value_info("P", onnx.TensorProto.FLOAT, [4, 2])],
        [
            helper.make_value_info(
                "Z",
                helper.make_sequence_type_proto(
                    helper.make_map_type_proto(
                        onnx.TensorProto.INT64,
                        helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, []),
                    )
                ),
            )
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ML, 1)]
    )
    assert "one column per key" in _refusal(model)
