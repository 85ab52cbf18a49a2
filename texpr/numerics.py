"""IEEE 754-2019 maximum and minimum on numpy arrays, as MLIR's `arith.maximumf` /
`arith.minimumf` and LLVM's `llvm.maximum` / `llvm.minimum` (what mlc compiles max and
min to) compute them: NaN if an operand is NaN, and -0.0 < +0.0.

numpy's `maximum` / `minimum` and `max` / `min` reductions propagate NaN too, but of -0.0
and +0.0 they return whichever comes first or second. The reference semantics (graph and
tl interpreters, texpr evaluator) use these instead, so that their zero results have the
sign the native code gives. Integer and boolean arrays are passed through to numpy.

`erf` and `expit` are scipy's, imported on first use: scipy.special takes 0.15 s to
import, which every compile (constant folding evaluates graph ops) would otherwise pay.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["erf", "expit", "maximum", "minimum", "reduce_maximum", "reduce_minimum"]

Axes = int | tuple[int, ...] | None


def erf(x: Any) -> Any:
    """`scipy.special.erf`."""
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


def expit(x: Any) -> Any:
    """`scipy.special.expit`, the logistic sigmoid."""
    from scipy.special import expit as scipy_expit

    return scipy_expit(x)


def _zero(x: Any, negative: bool) -> np.ndarray:
    """Where `x` is -0.0 (`negative`) or +0.0."""
    return (x == 0) & (np.signbit(x) == negative)


def _has_signed_zeros(dtype: np.dtype) -> bool:
    return dtype.kind not in "biu"  # floats, ml_dtypes' bfloat16 included (kind "V")


def _elementwise(result: np.ndarray, a: Any, b: Any, negative: bool) -> np.ndarray:
    """numpy's maximum / minimum `result` of `a` and `b` with its zeros made -0.0
    (`negative`: the minimum) or +0.0 where an operand is that zero."""
    if not _has_signed_zeros(result.dtype) or not np.any(result == 0):
        return result
    wanted = _zero(a, negative) | _zero(b, negative)
    zero = -result.dtype.type(0) if negative else result.dtype.type(0)
    return np.where((result == 0) & wanted, zero, result)


def _reduced(
    result: np.ndarray, x: np.ndarray, axis: Axes, keepdims: bool, negative: bool
) -> np.ndarray:
    """A max / min reduction `result` of `x` with its zeros made -0.0 (`negative`: the
    minimum) or +0.0 where a reduced element is that zero."""
    if not _has_signed_zeros(result.dtype) or not np.any(result == 0):
        return result
    wanted = np.any(_zero(x, negative), axis=axis, keepdims=keepdims)
    zero = -result.dtype.type(0) if negative else result.dtype.type(0)
    return np.where((result == 0) & wanted, zero, result)


def maximum(a: Any, b: Any) -> np.ndarray:
    """Elementwise maximum; a zero result is +0.0 if either operand is +0.0."""
    return _elementwise(np.asarray(np.maximum(a, b)), a, b, negative=False)


def minimum(a: Any, b: Any) -> np.ndarray:
    """Elementwise minimum; a zero result is -0.0 if either operand is -0.0."""
    return _elementwise(np.asarray(np.minimum(a, b)), a, b, negative=True)


def reduce_maximum(
    x: np.ndarray, axis: Axes = None, keepdims: bool = False, initial: Any = None
) -> np.ndarray:
    """`np.max` over `axis` (from `initial`, if given, as numpy's); a zero result is +0.0
    if any reduced element is +0.0."""
    extra = {} if initial is None else {"initial": initial}
    result = np.asarray(np.max(x, axis=axis, keepdims=keepdims, **extra))
    return _reduced(result, x, axis, keepdims, negative=False)


def reduce_minimum(
    x: np.ndarray, axis: Axes = None, keepdims: bool = False, initial: Any = None
) -> np.ndarray:
    """`np.min` over `axis` (from `initial`, if given); a zero result is -0.0 if any
    reduced element is -0.0."""
    extra = {} if initial is None else {"initial": initial}
    result = np.asarray(np.min(x, axis=axis, keepdims=keepdims, **extra))
    return _reduced(result, x, axis, keepdims, negative=True)
