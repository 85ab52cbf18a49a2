"""The `tl` (tensor-loop) dialect: structured kernels over buffers, and explicit loops.

Two forms share one representation of "what a kernel computes":

* **Structured** — `tl.kernel`: named iterators with extents and kinds (`parallel` /
  `reduction`), one affine index map per `memref` operand (iterator space -> operand
  indices), a scalar body (block arguments: one element per input, then the current value
  of each output; `tl.yield` gives the new output values). Destination style: inputs are
  read, outputs are written in place. An output may carry an `init` value (written at every
  reachable index before the reduction starts); an input may carry a `pad` value (an
  out-of-bounds read yields it instead of being an error).
* **Explicit loops** — `tl.for` (static bounds, a loop kind: serial, parallel,
  vectorize(width), unroll(factor)) around `tl.block`, which has exactly the operand / map /
  pad / init / body structure of a kernel but executes *one point* of the iteration space:
  `at(m = %mo * 8 + %mi, ...)` binds each iterator to an affine expression of enclosing loop
  variables, and `where(m < 60)` predicates imperfect splits. Local buffers and explicit
  copies use xDSL's `memref.alloc` / `memref.load` / `memref.store`.

Lowering a kernel to loops is "wrap a `tl.block` in one `tl.for` per iterator" (see
`mlc.lowering.tl_kernel_to_loops`); an `init` becomes its own loop nest.

Semantics of a kernel = executing its body at every point of the iteration domain in
lexicographic order of the iterators (the first iterator outermost). `parallel` is a
promise checked by the verifier: every parallel iterator indexes every output, and no
reduction iterator does. Operands are written in a readable form in which the index maps
use the iterator names (`%A[m, k]`); internally they are `affine_map`s over the iterators.
"""

from __future__ import annotations

from xdsl.ir import Dialect
from xdsl.irdl import IRDLOperation

from mlc.dialects.tl.affine import (
    Interval,
    affine_range,
    affine_tokens,
    format_affine_expr,
    linear_form,
    parse_affine_expr,
    parse_index_list,
)
from mlc.dialects.tl.attrs import (
    IteratorAttr,
    IteratorKind,
    IteratorKindAttr,
    LoopKind,
    LoopKindAttr,
    TlError,
)
from mlc.dialects.tl.base import (
    IndexOp,
    ScalarAttr,
    StructuredOp,
    YieldOp,
    is_scalar_type,
    row_major_strides,
    scalar_attr,
    scalar_value,
)
from mlc.dialects.tl.builders import Access, build_body, build_kernel, build_loop_nest
from mlc.dialects.tl.check import CheckOp, RuntimeCheckError
from mlc.dialects.tl.loops import ForOp, loop_var_range
from mlc.dialects.tl.structured import BlockOp, KernelOp

Tl = Dialect(
    "tl",
    [KernelOp, BlockOp, ForOp, IndexOp, YieldOp, CheckOp],
    [IteratorAttr, IteratorKindAttr, LoopKindAttr],
)

ALL_OPS: tuple[type[IRDLOperation], ...] = (KernelOp, BlockOp, ForOp, IndexOp, YieldOp, CheckOp)

__all__ = [
    "ALL_OPS",
    "Access",
    "BlockOp",
    "CheckOp",
    "RuntimeCheckError",
    "ForOp",
    "IndexOp",
    "Interval",
    "IteratorAttr",
    "IteratorKind",
    "IteratorKindAttr",
    "KernelOp",
    "LoopKind",
    "LoopKindAttr",
    "ScalarAttr",
    "StructuredOp",
    "Tl",
    "TlError",
    "YieldOp",
    "affine_range",
    "affine_tokens",
    "build_body",
    "build_kernel",
    "build_loop_nest",
    "format_affine_expr",
    "is_scalar_type",
    "linear_form",
    "loop_var_range",
    "parse_affine_expr",
    "parse_index_list",
    "row_major_strides",
    "scalar_attr",
    "scalar_value",
]
