"""Tree ensembles of scikit-learn, XGBoost and LightGBM through mlc: predictions equal the
library's own `predict` / `predict_proba`, through `mlc.interpret` of the imported module
and through `mlc.compile(estimator)` (row-wise, `targets.rowwise`).

Labels are exact. Probabilities and regression values: fp32 within rtol 1e-5, and for
boosted models (sums of many signed leaf values) also within an atol of 1e-5 times the
mean absolute leaf value (see `_tolerance`); a binary classifier's `1 - p` within 2**-23.
Inputs: the data sets' rows plus rows whose features sit exactly on the trees' own
thresholds (ties; LightGBM's match only because `to_onnx_model` rounds its f64
thresholds down to f32, see `round_down_thresholds`), and NaNs for XGBoost and LightGBM
models trained with NaNs (their trees learned where missing values go).

Also: `targets.rowwise` (buckets, chunks, errors) and `parser.estimators` errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
pytest.importorskip("onnxmltools")

import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
from sklearn import datasets  # noqa: E402
from sklearn import ensemble as sk_ensemble  # noqa: E402
from sklearn import tree as sk_tree  # noqa: E402

import mlc  # noqa: E402
from mlc.parser.estimators import EstimatorError, round_down_thresholds, to_onnx_model  # noqa: E402
from mlc.targets.compiled import InvalidInputError  # noqa: E402
from mlc.targets.rowwise import RowwiseModel, bucket_size, compile_rowwise  # noqa: E402

# -- data ------------------------------------------------------------------------------


Data = tuple[np.ndarray, np.ndarray]


@functools.cache
def _iris() -> Data:
    x, y = datasets.load_iris(return_X_y=True)
    return x.astype(np.float32), y


@functools.cache
def _iris_strings() -> Data:
    x, y = _iris()
    return x, np.array(["setosa", "versicolor", "virginica"])[y]


@functools.cache
def _cancer() -> Data:
    x, y = datasets.load_breast_cancer(return_X_y=True)
    return x.astype(np.float32), y


@functools.cache
def _diabetes() -> Data:
    x, y = datasets.load_diabetes(return_X_y=True)
    return x.astype(np.float32), y


@functools.cache
def _covtype_like() -> Data:
    """covtype's shape: 54 features, 7 classes (synthetic, small)."""
    x, y = datasets.make_classification(
        n_samples=1200, n_features=54, n_informative=16, n_classes=7,
        n_clusters_per_class=1, random_state=0,
    )  # fmt: skip
    return x.astype(np.float32), y


@functools.cache
def _random_regression(targets: int = 1) -> Data:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = np.stack([np.sin(x[:, k]) + x[:, k + 1] * x[:, 2] for k in range(targets)], axis=1)
    return x, (y[:, 0] if targets == 1 else y)


@functools.cache
def _random_classes() -> Data:
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(400, 6)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] * x[:, 2] > 0.1).astype(np.int64) + (x[:, 3] > 0.5)


def _with_nans(data: Data, fraction: float = 0.2) -> Data:
    x, y = data
    rng = np.random.default_rng(3)
    x = x.copy()
    x[rng.random(x.shape) < fraction] = np.nan
    return x, y


@functools.cache
def _nan_classes() -> Data:
    return _with_nans(_random_classes())


@functools.cache
def _nan_binary() -> Data:
    x, y = _random_classes()
    return _with_nans((x, (y > 0).astype(np.int64)))


@functools.cache
def _nan_regression() -> Data:
    return _with_nans(_random_regression())


# -- the trees' thresholds (for ties) ----------------------------------------------------


def _sklearn_splits(model: Any) -> list[tuple[int, float]]:
    trees = [model] if hasattr(model, "tree_") else list(np.ravel(model.estimators_))
    found = []
    for t in trees:
        nodes = t.tree_
        found += [(int(f), float(v)) for f, v in zip(nodes.feature, nodes.threshold) if f >= 0]
    return found


def _xgboost_splits(model: Any) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []

    def walk(node: dict[str, Any]) -> None:
        if "split" in node:
            found.append((int(str(node["split"]).lstrip("f")), float(node["split_condition"])))
            for child in node["children"]:
                walk(child)

    for text in model.get_booster().get_dump(dump_format="json"):
        walk(json.loads(text))
    return found


def _lightgbm_splits(model: Any) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            found.append((int(node["split_feature"]), float(node["threshold"])))
            walk(node["left_child"])
            walk(node["right_child"])

    for info in model.booster_.dump_model()["tree_info"]:
        walk(info["tree_structure"])
    return found


def _tie_rows(x: np.ndarray, splits: list[tuple[int, float]], n: int = 64) -> np.ndarray:
    """`n` rows of `x` with about half their features set exactly to a threshold of one
    of the trees' splits on that feature (as the f32 feature value nearest to it)."""
    rng = np.random.default_rng(4)
    by_feature: dict[int, list[float]] = {}
    for f, t in splits:
        by_feature.setdefault(f, []).append(t)
    rows = x[rng.integers(0, len(x), n)].copy()
    with np.errstate(over="ignore"):  # LightGBM's "everything left" split is at 1e300: inf
        for row in rows:
            for f, ts in by_feature.items():
                if rng.random() < 0.5:
                    row[f] = np.float32(ts[rng.integers(len(ts))])
    return rows


# -- cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A model to fit on `data` and check on its first rows plus tie rows."""

    id: str
    library: str  # sklearn | xgboost | lightgbm
    make: Callable[[], Any]
    data: Callable[[], Data]
    boosted: bool = False

    @property
    def classifier(self) -> bool:
        return hasattr(self.fitted()[0], "predict_proba")

    @functools.cache  # noqa: B019  (a few small cases, alive for the whole run)
    def fitted(self) -> tuple[Any, np.ndarray]:
        """The fitted model and the rows to check it on."""
        if self.library != "sklearn":
            pytest.importorskip(self.library)
        x, y = self.data()
        model = self.make().fit(x, y)
        splits = {"sklearn": _sklearn_splits, "xgboost": _xgboost_splits,
                  "lightgbm": _lightgbm_splits}[self.library](model)  # fmt: skip
        rows = np.concatenate([x[:150], _tie_rows(x, splits)])
        return model, np.ascontiguousarray(rows, np.float32)


def _xgb(kind: str, **kw: Any) -> Callable[[], Any]:
    def make() -> Any:
        import xgboost

        return getattr(xgboost, kind)(n_estimators=20, max_depth=4, random_state=0, n_jobs=1, **kw)

    return make


def _lgbm(kind: str, **kw: Any) -> Callable[[], Any]:
    def make() -> Any:
        import lightgbm

        return getattr(lightgbm, kind)(n_estimators=20, num_leaves=15, random_state=0,
                                       verbose=-1, n_jobs=1, **kw)  # fmt: skip

    return make


def _sk(cls: type, **kw: Any) -> Callable[[], Any]:
    return functools.partial(cls, random_state=0, **kw)


CASES = [
    Case("dt-clf-iris", "sklearn", _sk(sk_tree.DecisionTreeClassifier), _iris),
    Case("dt-reg-diabetes", "sklearn", _sk(sk_tree.DecisionTreeRegressor, max_depth=8), _diabetes),
    Case("rf-clf-iris-strings", "sklearn",
         _sk(sk_ensemble.RandomForestClassifier, n_estimators=10, max_depth=5), _iris_strings),
    Case("rf-clf-cancer", "sklearn",
         _sk(sk_ensemble.RandomForestClassifier, n_estimators=10, max_depth=6), _cancer),
    Case("rf-clf-covtype-like", "sklearn",
         _sk(sk_ensemble.RandomForestClassifier, n_estimators=15, max_depth=8), _covtype_like),
    Case("rf-reg-random", "sklearn",
         _sk(sk_ensemble.RandomForestRegressor, n_estimators=10, max_depth=6), _random_regression),
    Case("rf-reg-multi-output", "sklearn",
         _sk(sk_ensemble.RandomForestRegressor, n_estimators=10, max_depth=6),
         functools.partial(_random_regression, 2)),
    Case("et-clf-random", "sklearn",
         _sk(sk_ensemble.ExtraTreesClassifier, n_estimators=10, max_depth=6), _random_classes),
    Case("et-reg-diabetes", "sklearn",
         _sk(sk_ensemble.ExtraTreesRegressor, n_estimators=10, max_depth=6), _diabetes),
    Case("gb-clf-binary-cancer", "sklearn",
         _sk(sk_ensemble.GradientBoostingClassifier, n_estimators=20, max_depth=3), _cancer, True),
    Case("gb-clf-multi-iris", "sklearn",
         _sk(sk_ensemble.GradientBoostingClassifier, n_estimators=10, max_depth=3), _iris, True),
    Case("gb-reg-diabetes", "sklearn",
         _sk(sk_ensemble.GradientBoostingRegressor, n_estimators=20, max_depth=3), _diabetes, True),
    Case("xgb-clf-binary-cancer", "xgboost", _xgb("XGBClassifier"), _cancer, True),
    Case("xgb-clf-multi-covtype-like", "xgboost", _xgb("XGBClassifier"), _covtype_like, True),
    Case("xgb-reg-diabetes", "xgboost", _xgb("XGBRegressor"), _diabetes, True),
    Case("xgb-clf-binary-nan", "xgboost", _xgb("XGBClassifier"), _nan_binary, True),
    Case("xgb-clf-multi-nan", "xgboost", _xgb("XGBClassifier"), _nan_classes, True),
    Case("xgb-reg-nan", "xgboost", _xgb("XGBRegressor"), _nan_regression, True),
    Case("lgbm-clf-binary-cancer", "lightgbm", _lgbm("LGBMClassifier"), _cancer, True),
    Case("lgbm-clf-multi-iris", "lightgbm", _lgbm("LGBMClassifier", min_child_samples=5), _iris, True),
    Case("lgbm-reg-diabetes", "lightgbm", _lgbm("LGBMRegressor"), _diabetes, True),
    Case("lgbm-clf-binary-nan", "lightgbm", _lgbm("LGBMClassifier"), _nan_binary, True),
    Case("lgbm-clf-multi-nan", "lightgbm", _lgbm("LGBMClassifier"), _nan_classes, True),
    Case("lgbm-reg-nan", "lightgbm", _lgbm("LGBMRegressor"), _nan_regression, True),
]  # fmt: skip


@functools.cache
def _onnx(case: Case) -> onnx.ModelProto:
    return to_onnx_model(case.fitted()[0])


def _mean_abs_leaf(model: onnx.ModelProto) -> float:
    """The mean |weight| of the ensemble's leaves (per class or target, learning rate
    applied, as the converter wrote them)."""
    weights: list[np.ndarray] = []
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in ("class_weights", "target_weights"):
                weights.append(np.abs(np.asarray(attr.floats, np.float64)))
            elif attr.name in ("class_weights_as_tensor", "target_weights_as_tensor"):
                weights.append(np.abs(numpy_helper.to_array(attr.t).astype(np.float64)))
    return float(np.concatenate(weights).mean())


def _tolerance(case: Case) -> tuple[float, float]:
    """(rtol, atol). Boosted models add up many leaf values of both signs: a score near 0
    is the cancellation of terms much larger than itself, so rounding each term (f32 in
    the library or the converter, f64 in mlc) leaves an error relative to the terms, not
    to the result. A score here sums at most 20 trees; XGBoost rounds each partial sum to
    f32 (20 * 2**-24 * |leaf| ≈ 1.2e-6 * |leaf|): an atol of 1e-5 * the mean |leaf|
    covers that with margin and is still far below any one leaf's contribution."""
    atol = 1e-5 * _mean_abs_leaf(_onnx(case)) if case.boosted else 0.0
    return 1e-5, atol


def _check(case: Case, outputs: list[np.ndarray]) -> None:
    model, x = case.fitted()
    rtol, atol = _tolerance(case)
    if case.classifier:
        label, probabilities = outputs
        expected = model.predict(x)
        wrong = np.flatnonzero(np.asarray(label) != expected)
        assert wrong.size == 0, f"labels differ at rows {wrong[:10].tolist()}: " + str(
            [(label[i], expected[i], probabilities[i].tolist()) for i in wrong[:3]]
        )
        # a binary classifier's first probability is 1 - p, computed in f32 (ONNX-ML's
        # completion): next to p ~ 1 it is exact only to f32's spacing at 1, 2**-24
        atol = max(atol, 2.0**-23) if probabilities.shape[1] == 2 else atol
        np.testing.assert_allclose(probabilities, model.predict_proba(x), rtol=rtol, atol=atol)
    else:
        (values,) = outputs
        expected = np.asarray(model.predict(x), np.float64)
        np.testing.assert_allclose(values.reshape(expected.shape), expected, rtol=rtol, atol=atol)


IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_interpreted_module_matches_the_library(case: Case) -> None:
    _, x = case.fitted()
    module = mlc.import_onnx(_onnx(case), input_shapes={"X": list(x.shape)})
    _check(case, mlc.interpret(module, x))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_estimator_matches_the_library(case: Case) -> None:
    model, x = case.fitted()
    compiled = mlc.compile(model)
    assert isinstance(compiled, RowwiseModel)
    _check(case, compiled(x))


STRATEGY_CASES = ["rf-clf-iris-strings", "xgb-clf-multi-nan", "lgbm-reg-nan"]


@pytest.mark.parametrize("strategy", ["gemm", "traversal", "perfect"])
@pytest.mark.parametrize("case", [c for c in CASES if c.id in STRATEGY_CASES], ids=STRATEGY_CASES)
def test_every_tree_strategy_matches_the_library(case: Case, strategy: str) -> None:
    """`tree_strategy` (a `compile_model` option) reaches every bucket's compile."""
    model, x = case.fitted()
    _check(case, mlc.compile(model, tree_strategy=strategy)(x))


def test_string_labels_survive_the_model_cache() -> None:
    case = next(c for c in CASES if c.id == "rf-clf-iris-strings")
    model, x = case.fitted()
    first = mlc.compile(model)
    _check(case, first(x))
    again = mlc.compile(model)  # a new RowwiseModel: its bucket comes from the cache
    label, _ = again(x)
    assert again.compiled(again.bucket(len(x))).cache_hits > 0
    assert label.dtype == object and set(label.tolist()) <= {"setosa", "versicolor", "virginica"}
    _check(case, again(x))


def test_string_labels_survive_export(tmp_path: Any) -> None:
    case = next(c for c in CASES if c.id == "rf-clf-iris-strings")
    model, x = case.fitted()
    bucket = mlc.compile(model).compiled(8)
    bucket.export(tmp_path / "forest.so")
    loaded = mlc.load(tmp_path / "forest.so")
    assert loaded.outputs[0].labels == ("setosa", "versicolor", "virginica")
    label, _ = loaded(x[:8])
    assert label.dtype == object
    assert label.tolist() == model.predict(x[:8]).tolist()


def test_string_labels_come_back_as_strings_like_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    case = next(c for c in CASES if c.id == "rf-clf-iris-strings")
    _, x = case.fitted()
    proto = _onnx(case)
    (expected, _) = ort.InferenceSession(proto.SerializeToString()).run(None, {"X": x})
    module = mlc.import_onnx(proto, input_shapes={"X": list(x.shape)})
    (label, _) = mlc.interpret(module, x)
    assert label.dtype == expected.dtype == object
    assert label.tolist() == expected.tolist()


# -- targets.rowwise ---------------------------------------------------------------------


def test_bucket_size_is_the_next_power_of_two_up_to_the_block() -> None:
    assert [bucket_size(n, 16) for n in (1, 2, 3, 4, 5, 9, 16, 17, 1000)] == [
        1, 2, 4, 4, 8, 16, 16, 16, 16,
    ]  # fmt: skip
    assert bucket_size(1000) == 1024 and bucket_size(1025) == 1024
    assert bucket_size(5, block=6) == 6
    with pytest.raises(ValueError):
        bucket_size(0)


@functools.cache
def _small_forest() -> tuple[Any, bytes]:
    x, y = _random_classes()
    model = sk_ensemble.RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0)
    model.fit(x, y)
    return model, to_onnx_model(model).SerializeToString()


def test_rowwise_runs_any_batch_in_buckets_and_chunks() -> None:
    estimator, source = _small_forest()
    x = _random_classes()[0]
    model = compile_rowwise(source, block=8)
    assert (model.input_name, model.n_features, model.dtype) == ("X", 6, np.float32)
    label, proba = model(x[:19])  # 8 + 8 + 3 (bucket 4)
    assert sorted(model.buckets) == [4, 8]
    np.testing.assert_array_equal(label, estimator.predict(x[:19]))
    np.testing.assert_allclose(proba, estimator.predict_proba(x[:19]), rtol=1e-5)
    assert [a.shape for a in model(x[:3])] == [(3,), (3, 3)]  # bucket 4 again, padded
    assert sorted(model.buckets) == [4, 8]
    assert [a.shape for a in model(x[:0])] == [(0,), (0, 3)]
    assert sorted(model.buckets) == [1, 4, 8]
    one = model(x[5:6])
    assert one[0].tolist() == estimator.predict(x[5:6]).tolist()
    # a strided view works the same as its copy
    view = x[:16:2]
    np.testing.assert_array_equal(model(view)[0], estimator.predict(view))


def test_rowwise_checks_the_input_before_running() -> None:
    _, source = _small_forest()
    model = compile_rowwise(source, block=4)
    x = _random_classes()[0]
    with pytest.raises(InvalidInputError, match="6 features per row"):
        model(x[:, :5])
    with pytest.raises(InvalidInputError, match=r"must be 2-D .*reshape\(1, -1\)"):
        model(x[0])
    with pytest.raises(InvalidInputError, match="must be 2-D"):
        model(x[None])
    with pytest.raises(InvalidInputError, match=r"dtype float32 .*astype"):
        model(x.astype(np.float64))
    assert model.buckets == {}  # nothing compiled for bad inputs


def test_rowwise_opt_in_for_onnx_models_and_its_errors() -> None:
    estimator, source = _small_forest()
    model = mlc.compile(source, rowwise=True)
    assert isinstance(model, RowwiseModel)
    x = _random_classes()[0][:5]
    np.testing.assert_array_equal(model(x)[0], estimator.predict(x))
    with pytest.raises(ValueError, match="input_shapes"):
        mlc.compile(source, rowwise=True, input_shapes={"X": [4, 6]})
    module = mlc.import_onnx(source, input_shapes={"X": [4, 6]})
    with pytest.raises(ValueError, match="static shapes"):
        mlc.compile(module, rowwise=True)
    with pytest.raises(ValueError, match="n_features is for estimators"):
        compile_rowwise(source, n_features=6)


def test_rowwise_rejects_a_model_that_is_not_two_dimensional() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["X"], ["Y"])], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2, 3])],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"\[batch, features\]"):
        compile_rowwise(helper.make_model(graph).SerializeToString())


def test_rowwise_rejects_outputs_without_the_batch_first() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["X"], ["Y"], keepdims=0)], "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [])],
    )  # fmt: skip
    model = compile_rowwise(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    with pytest.raises(ValueError, match="not row-wise"):
        model(np.ones((2, 3), np.float32))


# -- parser.estimators ---------------------------------------------------------------------


def test_a_pipeline_classifier_gives_a_probability_tensor() -> None:
    from sklearn.pipeline import make_pipeline

    x, y = _iris()
    pipeline = make_pipeline(sk_tree.DecisionTreeClassifier(max_depth=3, random_state=0))
    pipeline.fit(x, y)
    proto = to_onnx_model(pipeline)
    assert [o.type.tensor_type.elem_type for o in proto.graph.output] == [
        onnx.TensorProto.INT64, onnx.TensorProto.FLOAT,
    ]  # fmt: skip
    module = mlc.import_onnx(proto, input_shapes={"X": list(x.shape)})
    label, probabilities = mlc.interpret(module, x)
    np.testing.assert_array_equal(label, pipeline.predict(x))
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(x), rtol=1e-5)


def test_boosters_convert() -> None:
    """`xgboost.Booster` and `lightgbm.Booster` (the libraries' own training APIs)."""
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    x, y = _cancer()
    boosters = [
        xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                      xgboost.DMatrix(x, y), 10),
        lightgbm.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                       lightgbm.Dataset(x, y), 10),
    ]  # fmt: skip
    for booster in boosters:
        module = mlc.import_onnx(to_onnx_model(booster), input_shapes={"X": list(x.shape)})
        _, probabilities = mlc.interpret(module, x)
        expected = booster.predict(xgboost.DMatrix(x) if hasattr(booster, "get_dump") else x)
        # atol: a probability near 0 carries the score's absolute error (see `_tolerance`)
        np.testing.assert_allclose(probabilities[:, 1], expected, rtol=1e-5, atol=1e-6)


def test_an_unfitted_estimator_is_refused() -> None:
    with pytest.raises(EstimatorError, match="is not fitted: call fit"):
        to_onnx_model(sk_ensemble.RandomForestClassifier())
    with pytest.raises(EstimatorError, match="is not fitted"):
        mlc.compile(sk_tree.DecisionTreeRegressor())


def test_an_unfitted_boosted_model_is_refused() -> None:
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    for model in (xgboost.XGBClassifier(), lightgbm.LGBMRegressor()):
        with pytest.raises(EstimatorError, match="is not fitted"):
            to_onnx_model(model)


def test_an_unknown_object_is_refused() -> None:
    class Predictor:
        def predict(self, x: np.ndarray) -> np.ndarray:
            return x

    with pytest.raises(EstimatorError, match=r"cannot convert a .*Predictor: mlc converts"):
        to_onnx_model(Predictor())
    with pytest.raises(EstimatorError, match="cannot convert"):
        mlc.compile(Predictor())


def test_a_class_is_refused() -> None:
    with pytest.raises(EstimatorError, match="is a class: pass a fitted instance"):
        mlc.compile(sk_ensemble.RandomForestRegressor)


def test_thresholds_are_rounded_down_to_f32() -> None:
    """A LightGBM (f64) threshold the converter rounded up to the nearest f32 becomes the
    f32 below it; exact ones, other modes and ambiguous ones stay."""
    from onnx import helper

    up = 0.1  # f32(0.1) > 0.1
    assert float(np.float32(up)) > up
    exact, ambiguous = 0.5, float(np.float32(0.3))
    spacing = ambiguous - float(np.nextafter(np.float32(0.3), np.float32(0)))
    below_ambiguous = ambiguous - spacing / 4  # rounds (to nearest) to f32(0.3) too
    assert float(np.float32(below_ambiguous)) == ambiguous
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml",
        nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "BRANCH_LT", "BRANCH_LEQ", "LEAF"],
        nodes_featureids=[0, 0, 0, 1, 0],
        nodes_values=[up, exact, up, ambiguous, 0.0],
    )  # fmt: skip
    graph = helper.make_graph([node], "g", [], [])
    model = helper.make_model(graph)
    # feature 1: two thresholds that both round to f32(0.3), one from below, one exact
    changed = round_down_thresholds(model, {0: [up, exact], 1: [ambiguous, below_ambiguous]})
    (values,) = [list(a.floats) for a in model.graph.node[0].attribute if a.name == "nodes_values"]
    assert changed == 1
    assert values[0] == np.nextafter(np.float32(up), np.float32(-np.inf))
    assert values[1:4] == [exact, np.float32(up), np.float32(ambiguous)]


def test_a_wrong_feature_count_is_refused() -> None:
    estimator, _ = _small_forest()
    with pytest.raises(EstimatorError, match="n_features=5 is wrong: the estimator takes 6"):
        to_onnx_model(estimator, 5)
    assert to_onnx_model(estimator, 6).graph.input[0].name == "X"


def test_a_missing_converter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    estimator, _ = _small_forest()
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import skl2onnx -> ImportError
    with pytest.raises(EstimatorError, match=r'needs skl2onnx .*pip install "mlc\[ml\]"'):
        to_onnx_model(estimator)


def test_a_converter_failure_is_one_line() -> None:
    from sklearn.neighbors import NearestCentroid  # no skl2onnx converter

    x, y = _random_classes()
    with pytest.raises(EstimatorError, match="skl2onnx cannot convert .*NearestCentroid") as info:
        to_onnx_model(NearestCentroid().fit(x, y))
    assert "\n" not in str(info.value)
