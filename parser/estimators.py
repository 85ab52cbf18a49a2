"""Fitted estimators -> ONNX: `to_onnx_model(estimator) -> onnx.ModelProto`.

    model = to_onnx_model(RandomForestClassifier().fit(X, y))   # input "X": f32[None, F]
    compiled = mlc.compile(estimator)                            # converts with this module

scikit-learn estimators and pipelines go through skl2onnx, XGBoost models (the sklearn
API and `xgboost.Booster`) through `onnxmltools.convert_xgboost`, LightGBM models (the
sklearn API and `lightgbm.Booster`) through `onnxmltools.convert_lightgbm`. Classifiers
give their probabilities as one tensor (no ZipMap). The converters are optional
dependencies (`pip install "mlc[ml]"`), imported when a model is converted.

Every failure is an `EstimatorError` (a `ValueError`) with a one-line message: an
unfitted estimator, an object of no supported library, a converter that is not
installed, or one that cannot convert the model.
"""

from __future__ import annotations

import math
import os
from typing import Any

import onnx
from xdsl.dialects.builtin import ModuleOp

__all__ = ["INPUT_NAME", "EstimatorError", "is_estimator", "to_onnx_model"]

#: the name of the converted model's one input
INPUT_NAME = "X"

_INSTALL = 'pip install "mlc[ml]"'

#: library (a top-level module) -> the converter package it needs
_CONVERTERS = {"sklearn": "skl2onnx", "xgboost": "onnxmltools", "lightgbm": "onnxmltools"}


class EstimatorError(ValueError):
    """An estimator that cannot be converted to ONNX; the message says why."""


def is_estimator(obj: Any) -> bool:
    """Whether `obj` is a model object to convert (it has `predict`), not a model source
    mlc reads itself (a path, bytes, an `onnx.ModelProto` or a module)."""
    if isinstance(obj, str | bytes | os.PathLike | onnx.ModelProto | ModuleOp):
        return False
    return callable(getattr(obj, "predict", None))


def _library(estimator: Any) -> str | None:
    """The supported library `estimator`'s class (or a base class) comes from."""
    for cls in type(estimator).__mro__:
        root = (cls.__module__ or "").split(".")[0]
        if root in _CONVERTERS:
            return root
    return None


def _describe(estimator: Any) -> str:
    cls = type(estimator)
    return f"{cls.__module__}.{cls.__qualname__}"


def _check_fitted(estimator: Any, library: str) -> None:
    """`EstimatorError` unless `estimator` is fitted (a `Booster` always is)."""
    if type(estimator).__name__ == "Booster":
        return
    fitted = getattr(estimator, "__sklearn_is_fitted__", None)
    try:
        if fitted is not None:
            ok = bool(fitted())
        else:
            from sklearn.utils.validation import check_is_fitted

            check_is_fitted(estimator)
            ok = True
    except ImportError:
        raise EstimatorError(
            f"checking a {library} estimator needs scikit-learn: {_INSTALL}"
        ) from None
    except Exception:  # noqa: BLE001  (NotFittedError, or a library's own)
        ok = False
    if not ok:
        raise EstimatorError(
            f"{_describe(estimator)} is not fitted: call fit(X, y) before converting it"
        )


def _feature_count(estimator: Any, n_features: int | None) -> int:
    """The number of input features: `n_features`, else the estimator's own."""
    own: int | None = None
    if type(estimator).__name__ == "Booster":
        count = getattr(estimator, "num_features", None) or estimator.num_feature
        own = int(count())
    elif (value := getattr(estimator, "n_features_in_", None)) is not None:
        own = int(value)
    if n_features is None:
        if own is None:
            raise EstimatorError(
                f"{_describe(estimator)} does not say how many features it takes: pass n_features"
            )
        return own
    if n_features < 1 or (own is not None and own != n_features):
        expected = f"the estimator takes {own}" if own is not None else "it must be >= 1"
        raise EstimatorError(f"n_features={n_features} is wrong: {expected}")
    return int(n_features)


def _classifiers(estimator: Any) -> list[Any]:
    """`estimator` and every estimator nested in it (pipeline steps, column
    transformers) that is a classifier, for the converters' `zipmap` option."""
    from sklearn.base import is_classifier

    found: list[Any] = []
    params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else {}
    for obj in (estimator, *params.values()):
        if hasattr(obj, "fit") and is_classifier(obj) and not hasattr(obj, "steps"):
            if all(obj is not seen for seen in found):
                found.append(obj)
    return found


def _convert_sklearn(estimator: Any, n_features: int, target_opset: int | None) -> onnx.ModelProto:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    options: dict[Any, Any] = {id(c): {"zipmap": False} for c in _classifiers(estimator)}
    return convert_sklearn(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        options=options or None,
        target_opset=target_opset,
    )


def _convert_xgboost(estimator: Any, n_features: int, target_opset: int | None) -> onnx.ModelProto:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType  # its own, not skl2onnx's

    return convert_xgboost(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=target_opset,
    )


def _convert_lightgbm(estimator: Any, n_features: int, target_opset: int | None) -> onnx.ModelProto:
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = convert_lightgbm(
        estimator,
        initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
        target_opset=target_opset,
        zipmap=False,
    )
    booster = getattr(estimator, "booster_", estimator)
    round_down_thresholds(model, _lightgbm_thresholds(booster.dump_model()))
    return model


#: LightGBM reads an input `x` with `|x| <= kZeroThreshold` (1e-35f) as 0, and clips
#: inputs to +-1e300 (`AvoidInf`)
_LIGHTGBM_ZERO = 1.0000000180025095e-35
_LIGHTGBM_MAX = 1e300


def _lightgbm_thresholds(dump: dict[str, Any]) -> dict[int, list[float]]:
    """feature -> the (f64) thresholds of its `<=` splits, from `Booster.dump_model()`."""
    found: dict[int, list[float]] = {}
    stack = [info["tree_structure"] for info in dump.get("tree_info", [])]
    while stack:
        node = stack.pop()
        if "split_feature" not in node:
            continue
        if node.get("decision_type") == "<=" and isinstance(node.get("threshold"), int | float):
            t = float(node["threshold"])
            if t == -_LIGHTGBM_ZERO:  # x in [-1e-35, 1e-35] is read as 0: false here
                t = math.nextafter(t, -math.inf)
            elif abs(t) >= _LIGHTGBM_MAX:  # x is clipped to +-1e300: +-inf is on the line
                t = math.copysign(math.inf, t)
            found.setdefault(int(node["split_feature"]), []).append(t)
        stack += [node["left_child"], node["right_child"]]
    return found


def round_down_thresholds(model: onnx.ModelProto, thresholds: dict[int, list[float]]) -> int:
    """Make `BRANCH_LEQ` nodes of the tree ensembles in `model` exact for f32 inputs.

    ONNX-ML stores thresholds as f32; a converter rounding an f64 threshold `t` to the
    nearest f32 `v > t` sends `x == v` the wrong way (the library compares `x <= t` in
    f64). The f32 `w` with `x <= w <=> x <= t` for every f32 `x` is `t` rounded down.
    `thresholds` (feature -> the model's f64 thresholds) tells which `t` each `v` stands
    for; a `v` that two thresholds rounding down differently share stays as it is.
    Returns the number of thresholds changed."""
    import numpy as np

    down: dict[tuple[int, float], set[float]] = {}
    for feature, values in thresholds.items():
        t = np.asarray(values, np.float64)
        with np.errstate(over="ignore"):  # beyond f32: +-inf, as the converters write them
            nearest = t.astype(np.float32)
        below = np.where(nearest > t, np.nextafter(nearest, np.float32(-np.inf)), nearest)
        for v, w in zip(nearest.tolist(), below.tolist()):
            down.setdefault((feature, v), set()).add(w)
    changed = 0
    for node in model.graph.node:
        if node.domain != "ai.onnx.ml" or not node.op_type.startswith("TreeEnsemble"):
            continue
        attrs = {a.name: a for a in node.attribute}
        if not {"nodes_modes", "nodes_featureids", "nodes_values"} <= set(attrs):
            continue
        values = attrs["nodes_values"].floats
        for k, (mode, feature) in enumerate(
            zip(attrs["nodes_modes"].strings, attrs["nodes_featureids"].ints)
        ):
            found = down.get((int(feature), float(values[k])))
            if mode == b"BRANCH_LEQ" and found is not None and len(found) == 1:
                (w,) = found
                if w != values[k]:
                    values[k] = w
                    changed += 1
    return changed


_CONVERT = {"sklearn": _convert_sklearn, "xgboost": _convert_xgboost, "lightgbm": _convert_lightgbm}


def to_onnx_model(
    estimator: Any, n_features: int | None = None, *, target_opset: int | None = None
) -> onnx.ModelProto:
    """The ONNX model of a fitted scikit-learn estimator or pipeline, XGBoost or LightGBM
    model: one input `X`, f32 `[None, n_features]` (`n_features`: by default the
    estimator's `n_features_in_`); classifiers output their label and a probability
    tensor. `target_opset`: the converter's, by default its own choice.

    Raises `EstimatorError` for an unfitted estimator, an object of another library, a
    converter that is not installed (`pip install "mlc[ml]"`) or cannot convert it."""
    if isinstance(estimator, type):
        raise EstimatorError(f"{estimator.__qualname__} is a class: pass a fitted instance")
    library = _library(estimator)
    if library is None or not callable(getattr(estimator, "predict", None)):
        raise EstimatorError(
            f"cannot convert a {_describe(estimator)}: mlc converts fitted scikit-learn "
            "estimators and pipelines, XGBoost and LightGBM models (or give an ONNX model)"
        )
    _check_fitted(estimator, library)
    count = _feature_count(estimator, n_features)
    package = _CONVERTERS[library]
    try:
        model = _CONVERT[library](estimator, count, target_opset)
    except ImportError as e:
        missing = e.name or package
        raise EstimatorError(
            f"converting a {library} model to ONNX needs {missing} (not installed): {_INSTALL}"
        ) from None
    except EstimatorError:
        raise
    except Exception as e:  # noqa: BLE001  (a converter's own error, as one line)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EstimatorError(f"{package} cannot convert {_describe(estimator)}: {reason}") from None
    if not isinstance(model, onnx.ModelProto):
        raise EstimatorError(f"{package} returned a {type(model).__name__}, not an ONNX model")
    return model
