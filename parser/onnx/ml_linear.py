"""Converters of the ONNX-ML linear models and preprocessors (ai.onnx.ml opset 1):
`LinearRegressor`, `LinearClassifier`, `Normalizer`, `Scaler`, `Binarizer`, and `ZipMap`
(a graph output only: the probabilities matrix, returned to callers as dicts).

Each becomes standard graph ops (gemm, the post transforms of `ml_trees`, argmax,
reductions). Where onnx.reference and onnxruntime differ, these follow onnxruntime (the
runtime exported models are checked against), except where onnxruntime has a known bug;
each converter's docstring says which.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects.builtin import f32
from xdsl.ir import SSAValue

from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import nn, shape
from mlc.dialects.graph import reduce as rd
from mlc.dialects.graph.types import numpy_dtype, tensor
from mlc.parser.onnx.ml_trees import (
    POST_TRANSFORMS,
    _floats,
    _input_features,
    _string,
    class_labels,
    post_transform,
    record_string_labels,
)
from mlc.parser.onnx.node import ML_DOMAIN, NodeContext, converter


def _check_attrs(node: NodeContext, known: set[str]) -> None:
    extra = sorted(a for a in node._attrs if a not in known)
    if extra:
        node.unsupported(f"attribute {extra[0]!r} is not supported")


def _element_name(value: SSAValue) -> str:
    return value.type.element_type.name  # type: ignore[attr-defined]


def _as_f32(node: NodeContext, x: SSAValue) -> SSAValue:
    """`x` as f32 (these ops' outputs are f32 whatever X is, as onnxruntime computes)."""
    if _element_name(x) != "f32":
        x = node.emit(ew.CastOp.to(x, f32)).output
    return x


def _f32_rows(node: NodeContext) -> SSAValue:
    """X as a 2-D f32 matrix (a 1-D X is one row)."""
    return _as_f32(node, _input_features(node))


def _const(node: NodeContext, value: object, like: SSAValue | None = None) -> SSAValue:
    """A constant of `like`'s element type (f32 without `like`)."""
    dtype = np.float32 if like is None else numpy_dtype(like.type.element_type)  # type: ignore[attr-defined]
    return node.emit_constant(np.asarray(value, dtype))


def _binary(node: NodeContext, op: type, a: SSAValue, b: SSAValue) -> SSAValue:
    return node.emit(op.create([a, b])).output


def _transform(node: NodeContext) -> str:
    transform = _string(node, "post_transform", "NONE")
    if transform not in POST_TRANSFORMS:
        node.unsupported(f"post_transform {transform!r} is not one of {POST_TRANSFORMS}")
    return transform


def _linear_scores(node: NodeContext, x: SSAValue, n_rows: int | None) -> tuple[SSAValue, int]:
    """x @ coefficients.T + intercepts, coefficients (rows x features) as the row-major
    `coefficients` list; `n_rows` where an attribute fixes it, else inferred. Returns the
    scores and the number of rows."""
    n_features = x.type.get_shape()[1]  # type: ignore[attr-defined]
    coefficients = _floats(node, "coefficients")
    if coefficients is None or len(coefficients) == 0:
        node.unsupported("attribute 'coefficients' is required")
    if n_rows is None:
        if n_features == 0 or len(coefficients) % n_features:
            node.unsupported(f"{len(coefficients)} coefficients are not a multiple of the "
                             f"{n_features} input features")  # fmt: skip
        n_rows = len(coefficients) // n_features
    if n_rows < 1 or len(coefficients) != n_rows * n_features:
        node.unsupported(f"{len(coefficients)} coefficients for {n_rows} targets of "
                         f"{n_features} input features (expected {n_rows * n_features})")  # fmt: skip
    weights = node.emit_constant(coefficients.astype(np.float32).reshape(n_rows, n_features))
    intercepts = _floats(node, "intercepts")
    bias = None
    if intercepts is not None and len(intercepts):
        if len(intercepts) != n_rows:
            node.unsupported(f"intercepts has {len(intercepts)} entries, expected {n_rows}")
        bias = node.emit_constant(intercepts.astype(np.float32))
    op = nn.GemmOp.create([x, weights, bias], alpha=1.0, beta=1.0, trans_a=False, trans_b=True)
    return node.emit(op).output, n_rows


@converter("LinearRegressor", domain=ML_DOMAIN)
def linear_regressor(node: NodeContext) -> list[SSAValue]:
    """X @ coefficients.T + intercepts (f32), then the post transform. onnxruntime applies
    no transform but PROBIT to a single target (its bug, onnxruntime#26596); mlc applies
    every transform, as the spec says."""
    _check_attrs(node, {"coefficients", "intercepts", "targets", "post_transform"})
    transform = _transform(node)
    scores, _ = _linear_scores(node, _f32_rows(node), node.int("targets", 1))
    return [post_transform(node, scores, transform)]


def _labels(node: NodeContext) -> list[int] | list[str]:
    ints, strings = node.attr("classlabels_ints"), node.attr("classlabels_strings")
    if (ints is None) == (strings is None):
        node.unsupported("exactly one of classlabels_ints and classlabels_strings is required")
    if ints is not None:
        return [int(v) for v in ints]
    return [s.decode() if isinstance(s, bytes) else str(s) for s in strings]


@converter("LinearClassifier", domain=ML_DOMAIN)
def linear_classifier(node: NodeContext) -> list[SSAValue]:
    """Labels and f32 scores of a linear classifier, as onnxruntime computes them:

    * one coefficient row and two labels (binary): the label is `labels[1]` where the raw
      score s > 0, and the scores are `[1 - p, p]`, p = sigmoid(s) for LOGISTIC and s for
      NONE, SOFTMAX, SOFTMAX_ZERO (onnx.reference: `[-s, s]`, then the transform); PROBIT
      is refused (onnxruntime's result for it is not row-wise);
    * one row per label: the label is the argmax of the raw scores (the first on ties), the
      scores are the post-transformed ones.
    """
    _check_attrs(node, {"coefficients", "intercepts", "classlabels_ints", "classlabels_strings",
                        "multi_class", "post_transform"})  # fmt: skip
    labels = _labels(node)
    transform = _transform(node)
    scores, n_rows = _linear_scores(node, _f32_rows(node), None)
    if n_rows == 1 and len(labels) == 2:
        return _binary_classifier(node, scores, labels, transform)
    if n_rows != len(labels) or n_rows < 2:
        node.unsupported(f"{n_rows} coefficient rows for {len(labels)} class labels (one row per "
                         "label, or one row for two labels)")  # fmt: skip
    label = class_labels(node, scores, labels)
    return [label, post_transform(node, scores, transform)]


def _binary_classifier(
    node: NodeContext, s: SSAValue, labels: list[int] | list[str], transform: str
) -> list[SSAValue]:
    if transform == "PROBIT":
        node.unsupported("a binary LinearClassifier (one coefficient row) with post_transform "
                         "PROBIT is not supported: onnxruntime's scores for it are not defined "
                         "row by row")  # fmt: skip
    n = s.type.get_shape()[0]  # type: ignore[attr-defined]
    positive = _binary(node, ew.GreaterOp, s, _const(node, np.zeros((1, 1))))
    flat = tensor([n], positive.type.element_type)  # type: ignore[attr-defined]
    positive = node.emit(shape.ReshapeOp.create([positive], result_types=[flat])).output
    if isinstance(labels[0], str):
        record_string_labels(node, list(map(str, labels)))
        pair = np.asarray([0, 1], np.int64)
    else:
        pair = np.asarray(labels, np.int64)
    label = node.emit(ew.WhereOp.create([positive, node.emit_constant(pair[1]),
                                         node.emit_constant(pair[0])])).output  # fmt: skip
    p = node.emit(ew.SigmoidOp.create([s])).output if transform == "LOGISTIC" else s
    q = _binary(node, ew.SubOp, _const(node, np.ones((1, 1))), p)
    return [label, node.emit(shape.ConcatOp.create([q, p], axis=1)).output]


@converter("Normalizer", domain=ML_DOMAIN)
def normalizer(node: NodeContext) -> list[SSAValue]:
    """Each row (a 1-D X: the vector) divided by its MAX, L1 or L2 norm, in f32; a row whose
    norm is 0 is copied. As onnxruntime, MAX is the largest value (not the largest
    magnitude: onnx.reference's) and skips NaNs."""
    _check_attrs(node, {"norm"})
    norm = _string(node, "norm", "MAX")
    if norm not in ("MAX", "L1", "L2"):
        node.unsupported(f"norm {norm!r} is not one of MAX, L1, L2")
    rank = node.rank(0)
    if rank not in (1, 2):
        node.unsupported(f"input X must be 1-D or 2-D, got rank {rank}")
    x = _as_f32(node, node.input(0))
    axes = [rank - 1]
    zero = _const(node, 0.0)
    if norm == "MAX":
        is_number = _binary(node, ew.EqualOp, x, x)
        lowest = _const(node, np.finfo(np.float32).min)
        numbers = node.emit(ew.WhereOp.create([is_number, x, lowest])).output
        den = node.emit(rd.ReduceMaxOp.create([numbers], axes=axes, keepdims=True)).output
    elif norm == "L1":
        magnitude = node.emit(ew.AbsOp.create([x])).output
        den = node.emit(rd.ReduceSumOp.create([magnitude], axes=axes, keepdims=True)).output
    else:
        square = _binary(node, ew.MulOp, x, x)
        total = node.emit(rd.ReduceSumOp.create([square], axes=axes, keepdims=True)).output
        den = node.emit(ew.SqrtOp.create([total])).output
    is_zero = _binary(node, ew.EqualOp, den, zero)
    den = node.emit(ew.WhereOp.create([is_zero, _const(node, 1.0), den])).output
    return [_binary(node, ew.DivOp, x, den)]


def _per_feature(node: NodeContext, name: str, default: float, n_features: int) -> np.ndarray:
    values = _floats(node, name)
    if values is None or len(values) == 0:
        return np.asarray([default])
    if len(values) not in (1, n_features):
        node.unsupported(f"{name} has {len(values)} entries; expected 1 or {n_features} "
                         "(the last dimension of X)")  # fmt: skip
    return values


@converter("Scaler", domain=ML_DOMAIN)
def scaler(node: NodeContext) -> list[SSAValue]:
    """(X - offset) * scale along X's last dimension, f32 out (an f64 X is computed in f64
    and rounded once, as onnxruntime); a missing offset is 0 and a missing scale 1."""
    _check_attrs(node, {"offset", "scale"})
    x = node.input(0)
    if _element_name(x) not in ("f32", "f64"):
        x = _as_f32(node, x)
    n_features = node.shape(0)[-1] if node.rank(0) else 1
    offset = _per_feature(node, "offset", 0.0, n_features)
    scale = _per_feature(node, "scale", 1.0, n_features)
    y = _binary(node, ew.SubOp, x, _const(node, offset, like=x))
    return [_as_f32(node, _binary(node, ew.MulOp, y, _const(node, scale, like=x)))]


@converter("Binarizer", domain=ML_DOMAIN)
def binarizer(node: NodeContext) -> list[SSAValue]:
    """1 where X > threshold, else 0 (NaN: 0, which onnxruntime refuses at run time), of
    X's element type."""
    _check_attrs(node, {"threshold"})
    x = node.input(0)
    name = _element_name(x)
    threshold: float | int = node.float("threshold", 0.0)
    if name.startswith("i") and name != "i1":
        if np.isnan(threshold):
            node.unsupported("a NaN threshold for an integer X is not supported")
        # for integers, x > t is x > floor(t)
        info = np.iinfo(numpy_dtype(x.type.element_type))  # type: ignore[attr-defined]
        threshold = min(max(math.floor(threshold), int(info.min)), int(info.max))
    elif name not in ("f32", "f64", "f16"):
        node.unsupported(f"input X of element type {name} is not supported")
    above = _binary(node, ew.GreaterOp, x, _const(node, threshold, like=x))
    one, zero = _const(node, 1, like=x), _const(node, 0, like=x)
    return [node.emit(ew.WhereOp.create([above, one, zero])).output]


@converter("ZipMap", domain=ML_DOMAIN)
def zipmap(node: NodeContext) -> list[SSAValue]:
    """The probabilities matrix itself: mlc has no sequence or map values, so the output
    keeps the matrix and records its keys (`mlc.zipmap`); `mlc.interpret`, compiled and
    loaded models return one {key: probability} dict per row, as onnxruntime does. Only
    as a graph output: an op that consumed the sequence could not be expressed."""
    ints, strings = node.attr("classlabels_int64s"), node.attr("classlabels_strings")
    if (ints is None) == (strings is None):
        node.unsupported("exactly one of classlabels_int64s and classlabels_strings is required")
    keys: list[int] | list[str] = (
        [int(v) for v in ints]
        if ints is not None
        else [s.decode() if isinstance(s, bytes) else str(s) for s in strings]
    )
    shape = node.shape(0)
    if len(shape) != 2 or shape[1] != len(keys):
        node.unsupported(
            f"input must be rows x {len(keys)} (one column per key), got {list(shape)}"
        )
    node.zipmap_keys[node.node.output[0]] = keys
    return [node.input(0)]
