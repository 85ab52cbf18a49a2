"""mlc's tensor-expression language: one source of semantics for kernels and intrinsics.

>>> from mlc.texpr import parse, evaluate
>>> mm = parse("matmul(A: f32[M, K], B: f32[K, N]) -> C: f32[M, N] { C[m, n] += A[m, k] * B[k, n] }")
>>> [(i.name, str(i.extent), i.kind) for i in mm.iterators]
[('m', 'M', 'parallel'), ('n', 'N', 'parallel'), ('k', 'K', 'reduction')]

Language reference
------------------
A definition::

    name<S = 1, P>(In: dtype[dims], ...) -> Out: dtype[dims] { statements }
    name(...) -> (Out1: dtype[dims], Out2: dtype[dims]) { statements }

* dtypes: f16 bf16 f32 f64 i8 i16 i32 i64 u8 u16 u32 u64 bool.
* dims and ranges are *size expressions*: integers and size names with ``+ - *``,
  ``/`` (floor division) and ``%``. A size is bound from an input dimension that is
  exactly that name, else from ``<...>`` defaults, else it must be passed to `evaluate`.
  ``<...>`` declares sizes that only occur in indices (strides, paddings).
* An output with an input's name is in-out: it starts with the input's value.
* Statements (separated by newlines or ``;``)::

      T[i, j] op expr [where k in lo..hi, l in 0..L]

  ``op`` is ``=`` or a reduction ``+=``, ``*=``, ``max=``, ``min=``. Target indices are
  distinct iterator names (the parallel iterators); every other iterator is a reduction
  iterator. An iterator's range is the dimension it indexes directly (``A[m, k]``) unless
  a ``where`` clause gives it (needed when it only occurs in compound indices). A target
  that is neither input nor output is a local, shaped by its iterators' ranges and typed
  by its value. The first write of a target initializes it (a reduction from its
  identity: 0, 1, ``lowest``, ``highest``); later reductions accumulate into it.
* Indices are integer-affine in the iterators: ``+ -``, ``*`` by a size expression, and
  ``/ %`` by a positive constant or size (floor semantics).
* Scalar expressions: ``+ - * / %`` (integers: truncating division, C remainder), unary
  ``-``, comparisons ``< <= > >= == !=``, ``and or not``, literals (``2``, ``0.5``,
  ``inf``, ``nan``, ``true``, ``false``, and ``lowest``/``highest``: the extremes of the
  context's type), functions ``exp expm1 log log1p sqrt rsqrt tanh sigmoid erf sin cos
  tan asin acos atan sinh cosh asinh acosh atanh floor ceil round pow abs max min
  select`` (``round``: to nearest, ties to even), integer bit functions ``bitnot bitand
  bitor bitxor shl shr`` (shift amounts taken unsigned; >= the width gives 0, or -1 for
  ``shr`` of a negative signed value), casts
  ``f32(x)``, iterators and sizes as i64 values, and guarded reads
  ``X[h - 1, w] if in bounds else 0`` (the fallback where any read of the left side is
  out of bounds). Literals take the type their context demands; operands
  of one operation share one dtype (no implicit conversions).
* ``#`` starts a comment.

Checks: every error is a `TexprError` with ``line:col``. Reads and writes must stay in
bounds unless guarded: at parse time a search over small sizes looks for a
counterexample (`bounds`); `evaluate` and `specialize` check exactly for the actual sizes.
Semantics of evaluation are in `evaluator`.
"""

from mlc.texpr.affine import FloorDiv, Iter, Mod, Poly, Sym, const, it, sym
from mlc.texpr.ast import (
    Binary,
    Call,
    Cast,
    Const,
    Definition,
    Expr,
    Guarded,
    Index,
    Iterator,
    Read,
    SizeParam,
    Statement,
    TensorDecl,
    Unary,
    free_iterators,
    reads,
    walk,
)
from mlc.texpr.bounds import check_bounds, check_bounds_at
from mlc.texpr.dtypes import DTYPES, numpy_dtype
from mlc.texpr.errors import TexprError
from mlc.texpr.evaluator import evaluate, identity
from mlc.texpr.parser import parse, parse_all
from mlc.texpr.printer import format_definition, format_expr
from mlc.texpr.sizes import infer_sizes, specialize

__all__ = [
    "DTYPES",
    "Binary",
    "Call",
    "Cast",
    "Const",
    "Definition",
    "Expr",
    "FloorDiv",
    "Guarded",
    "Index",
    "Iter",
    "Iterator",
    "Mod",
    "Poly",
    "Read",
    "SizeParam",
    "Statement",
    "Sym",
    "TensorDecl",
    "TexprError",
    "Unary",
    "check_bounds",
    "check_bounds_at",
    "const",
    "evaluate",
    "format_definition",
    "format_expr",
    "free_iterators",
    "identity",
    "infer_sizes",
    "it",
    "numpy_dtype",
    "parse",
    "parse_all",
    "reads",
    "specialize",
    "sym",
    "walk",
]
