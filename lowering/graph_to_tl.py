"""`convert-graph-to-tl`: graph ops (value semantics on tensors) -> `tl.kernel`s on buffers.

Each graph op becomes kernels writing freshly allocated result buffers:

* ops with an expression in `mlc.texpr.library` (elementwise, nn, reduce, shape
  families) are translated statement by statement by `mlc.lowering.texpr_to_tl`;
* ops the library does not cover (its `NOT_AFFINE` ones, or instances it declines) use a
  hand-written lowering here (`HANDWRITTEN`): gather and gather_elements (data-dependent
  indices: `scf.for` loops with `memref.load` / `memref.store`; gather_nd and the
  scatters likewise, in `indexing_to_tl`), and reshape / dropout
  (copies over the row-major linear index; fallbacks, e.g. for empty tensors);
* `graph.constant` becomes a private constant `memref.global` and a `memref.get_global`
  (the dense attribute is kept as is, so weights stay bit-exact).

Bufferization and calling convention: the patterns work op by op and keep the IR valid
with `builtin.unrealized_conversion_cast`s between tensors and memrefs;
`bufferize_function` then rewrites each `func.func`: tensor arguments become memref
arguments of the same shape and element type (read only by the function), and tensor
results become memrefs that the function allocates (`memref.alloc`) and returns — a
result that is not such an allocation (an argument, a constant, a value returned twice)
is copied into a fresh one. Intermediates are `memref.alloc`s (never freed: the
interpreter and later passes own lifetimes).

An op that cannot be lowered raises `GraphToTlError` naming the op and the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    StringAttr,
    TensorType,
    UnrealizedConversionCastOp,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.rewriter import Rewriter

import mlc.texpr.library as lib
from mlc.dialects.graph import elementwise as ew
from mlc.dialects.graph import shape as sh
from mlc.dialects.graph.base import GraphOp
from mlc.dialects.graph.types import numpy_dtype
from mlc.dialects.tl import CheckOp, KernelOp, build_kernel
from mlc.lowering import (
    indexing_to_tl,  # noqa: F401  (registers its hand-written lowerings)
    trees_to_tl,  # noqa: F401  (registers its hand-written lowerings)
)
from mlc.lowering.buffers import (
    HANDWRITTEN,
    GraphToTlError,
    add_global,
    constant_buffer,
    fail,
    handwritten,
    memref_type,
    memref_type_of,
    module_of,
    scf_loop_nest,
)
from mlc.lowering.texpr_to_tl import TranslationError, emit_definition
from mlc.texpr import Definition, Iterator, Read, Statement, TensorDecl, const, it
from mlc.texpr.dtypes import dtype_name
from mlc.texpr.library import expression_for
from mlc.texpr.library.template import ExpressionError, simplify_index

# -- the expression library, through one adapter -------------------------------------------


@dataclass(frozen=True)
class OpSemantics:
    """An op's semantics as a specialized definition; ``operands[i]`` / ``results[i]``
    name the definition tensors standing for ``op.operands[i]`` / ``op.results[i]``."""

    definition: Definition
    operands: tuple[str, ...]
    results: tuple[str, ...]


def expression_of(op: Operation) -> OpSemantics | None:
    """The expression library's semantics of ``op`` (``None``: the library has none).

    The one place that knows the library's API (`mlc.texpr.library`)."""
    try:
        expr = expression_for(op)
    except (NotImplementedError, KeyError, ExpressionError):  # not covered by the library
        return None
    if expr is None:
        return None
    return OpSemantics(expr.definition, tuple(expr.operands), tuple(expr.results))


def not_affine() -> frozenset[type[Operation]]:
    """The op types the library declares not affine (hand-written lowerings only)."""
    return frozenset(getattr(lib, "NOT_AFFINE", ()))


# -- buffers -----------------------------------------------------------------------------


def to_buffer(rewriter: PatternRewriter, value: SSAValue, before: Operation) -> SSAValue:
    """A memref holding tensor ``value``: the source of a memref->tensor cast, or a new
    tensor->memref cast (resolved by `bufferize_function`)."""
    owner = value.owner
    if isinstance(owner, UnrealizedConversionCastOp) and isinstance(
        owner.inputs[0].type, MemRefType
    ):
        return owner.inputs[0]
    cast = UnrealizedConversionCastOp.get([value], [memref_type(value.type)])
    rewriter.insert(cast, InsertPoint.before(before))
    return cast.results[0]


def copy_kernel(builder: Builder, src: SSAValue, dst: SSAValue, label: str = "copy") -> None:
    """Insert a kernel copying buffer ``src`` into ``dst`` (same shape)."""
    shape = memref_type_of(src).get_shape()
    if 0 in shape:
        return
    names = [f"i{d}" for d in range(len(shape))]
    index = ", ".join(names)
    builder.insert(
        build_kernel(
            label,
            [(n, s, "parallel") for n, s in zip(names, shape, strict=True)],
            inputs=[(src, index)],
            outputs=[(dst, index)],
            body=lambda b, args: args[0],
        )
    )


# -- hand-written lowerings --------------------------------------------------------------


def _texpr_dtype(ty: Attribute) -> str:
    name = dtype_name(numpy_dtype(ty))
    assert name is not None
    return name


@handwritten(sh.ReshapeOp, ew.DropoutOp)
def lower_reshape(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    # reshape(X)[o] = X[unravel(ravel(o))]: a copy over the row-major linear index
    src, dst = memref_type_of(operands[0]), memref_type_of(results[0])
    in_shape, out_shape = src.get_shape(), dst.get_shape()
    if 0 in out_shape:
        return
    names = [f"o{d}" for d in range(len(out_shape))]
    linear = const(0)
    for name, size in zip(names, out_shape, strict=True):
        linear = linear * size + it(name)
    indices = []
    stride = math.prod(in_shape)
    for size in in_shape:
        stride //= size
        indices.append(linear.floordiv(stride).mod(size) if size != 1 else const(0))
    dtype = _texpr_dtype(src.element_type)
    x = TensorDecl("X", dtype, tuple(const(s) for s in in_shape))
    y = TensorDecl("Y", dtype, tuple(const(s) for s in out_shape))
    iters = tuple(Iterator(n, const(0), const(s), "parallel") for n, s in zip(names, out_shape))
    body = Read("X", tuple(_simplify(i, out_shape, names) for i in indices), dtype)
    stmt = Statement("Y", tuple(names), "=", body, iters, True)
    label = op.name.removeprefix("graph.")
    defn = Definition(label, (), (x,), (y,), (), (stmt,))
    emit_definition(builder, defn, {"X": operands[0], "Y": results[0]})


def _simplify(index: object, shape: Sequence[int], names: Sequence[str]) -> object:
    ranges = {n: (0, s - 1) for n, s in zip(names, shape, strict=True) if s > 0}
    return simplify_index(index, ranges)  # type: ignore[arg-type]


def _checked_index(builder: Builder, raw: SSAValue, dim: int, what: str) -> SSAValue:
    """An ``index`` value of integer ``raw`` counted from the end when negative, checked to
    lie in ``[-dim, dim)`` (`tl.check`): out of range it reads as 0, so the load that uses
    it stays inside the buffer whatever the input (``dim`` > 0)."""

    def const(v: int) -> SSAValue:
        return builder.insert(arith.ConstantOp(IntegerAttr(v, IndexType()))).result

    idx = builder.insert(arith.IndexCastOp(raw, IndexType())).result
    size, zero = const(dim), const(0)
    above = builder.insert(arith.CmpiOp(idx, const(-dim), "sge")).result
    below = builder.insert(arith.CmpiOp(idx, size, "slt")).result
    ok = builder.insert(arith.AndIOp(above, below)).result
    builder.insert(CheckOp(ok, f"{what}: an index is out of range [-{dim}, {dim})"))
    neg = builder.insert(arith.CmpiOp(idx, zero, "slt")).result
    wrapped = builder.insert(arith.AddiOp(idx, size)).result
    normalized = builder.insert(arith.SelectOp(neg, wrapped, idx)).result
    return builder.insert(arith.SelectOp(ok, normalized, zero)).result


@handwritten(sh.GatherOp, sh.GatherElementsOp)
def lower_gather(
    builder: Builder, op: Operation, operands: Sequence[SSAValue], results: Sequence[SSAValue]
) -> None:
    """Y[o] = X[o[:a], idx[o[a:a+r]], o[a+r:]] (gather); X[o with o[a] = idx[o]]
    (gather_elements). Every index is checked (`tl.check`): native code never reads
    outside X, and the call fails as the interpreter and onnxruntime do."""
    data, indices = operands
    out = results[0]
    out_shape = memref_type_of(out).get_shape()
    if 0 in out_shape:
        return
    data_type = memref_type_of(data)
    data_shape = data_type.get_shape()
    assert isinstance(op, sh.GatherOp | sh.GatherElementsOp)
    axis = op.axis + len(data_shape) if op.axis < 0 else op.axis
    dim = data_shape[axis]
    what = f"{op.name} (axis {axis}, size {dim})"
    inner, ivs = scf_loop_nest(builder, out_shape)
    if dim == 0:  # every index is out of range: nothing to read
        false = inner.insert(arith.ConstantOp(IntegerAttr(0, IntegerType(1)))).result
        inner.insert(CheckOp(false, f"{what}: an index is out of range of an empty axis"))
        return
    if isinstance(op, sh.GatherOp):
        rank = memref_type_of(indices).get_num_dims()
        raw = inner.insert(memref.LoadOp.get(indices, ivs[axis : axis + rank])).res
        where = [*ivs[:axis], _checked_index(inner, raw, dim, what), *ivs[axis + rank :]]
    else:
        raw = inner.insert(memref.LoadOp.get(indices, ivs)).res
        where = [*ivs[:axis], _checked_index(inner, raw, dim, what), *ivs[axis + 1 :]]
    value = inner.insert(memref.LoadOp.get(data, where)).res
    inner.insert(memref.StoreOp.get(value, out, ivs))


# -- patterns ----------------------------------------------------------------------------


class LowerConstant(RewritePattern):
    """graph.constant v -> memref.get_global @c, with memref.global @c = v (constant)."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, ew.ConstantOp):
            return
        ty = memref_type(op.result.type)
        value = op.value
        if ty.element_type != op.result.type.element_type:  # type: ignore[attr-defined]
            # ui8 data as an i8 global: the same bytes
            value = DenseIntOrFPElementsAttr(
                TensorType(ty.element_type, ty.get_shape()), value.data
            )
        name = add_global(module_of(op), value, ty)
        get = memref.GetGlobalOp(name, ty)
        back = UnrealizedConversionCastOp.get([get.memref], [op.result.type])
        rewriter.replace(op, [get, back], [back.results[0]])


class LowerGraphOp(RewritePattern):
    """graph.op(xs) -> alloc ys; kernels(xs -> ys), from the op's expression or `HANDWRITTEN`."""

    def match_and_rewrite(self, op: Operation, rewriter: PatternRewriter) -> None:
        if not isinstance(op, GraphOp) or isinstance(op, ew.ConstantOp):
            return
        for v in (*op.operands, *op.results):
            if not isinstance(v.type, TensorType):
                raise fail(op, f"operand or result of type {v.type} is not a tensor")
        # the expression library first; hand-written lowerings where it has none
        semantics = expression_of(op)
        lowering = HANDWRITTEN.get(type(op)) if semantics is None else None
        if semantics is None and lowering is None:
            why = (
                "it is not affine and has no hand-written lowering"
                if type(op) in not_affine()
                else "it has neither an expression in mlc.texpr.library nor a hand-written lowering"
            )
            raise fail(op, why)
        operands = [to_buffer(rewriter, v, op) for v in op.operands]
        builder = Builder(InsertPoint.before(op))
        allocs = [
            builder.insert(
                memref.AllocOp.get(memref_type(r.type).element_type, shape=r.type.get_shape())
            )  # type: ignore[attr-defined]
            for r in op.results
        ]
        results = [a.memref for a in allocs]
        try:
            if lowering is not None:
                lowering(builder, op, operands, results)
            else:
                assert semantics is not None
                buffers: dict[str, SSAValue] = {}
                defn = semantics.definition
                names = {d.name for d in (*defn.inputs, *defn.outputs)}
                for name, buf in zip(semantics.operands, operands, strict=True):
                    if name in names:
                        buffers[name] = buf
                for name, buf in zip(semantics.results, results, strict=True):
                    buffers[name] = buf
                label = op.name.removeprefix("graph.")
                emit_definition(builder, defn, buffers, label)
        except TranslationError as exc:
            raise fail(op, str(exc)) from exc
        casts = [UnrealizedConversionCastOp.get([m], [r.type]) for m, r in zip(results, op.results)]
        rewriter.replace(op, casts, [c.results[0] for c in casts])


def graph_to_tl_patterns() -> list[RewritePattern]:
    """The op-by-op patterns (tensor <-> memref glue: `unrealized_conversion_cast`)."""
    return [LowerConstant(), LowerGraphOp()]


# -- functions ---------------------------------------------------------------------------


def bufferize_function(f: func.FuncOp) -> None:
    """Give ``f`` the memref calling convention (see the module docstring) and remove the
    tensor <-> memref casts the patterns left."""
    if not f.body.blocks:
        return
    block = f.body.block
    rewriter = Rewriter()
    for arg in list(block.args):
        if isinstance(arg.type, TensorType):
            new = rewriter.replace_value_with_new_type(arg, memref_type(arg.type))
            for use in list(new.uses):
                user = use.operation
                if (
                    isinstance(user, UnrealizedConversionCastOp)
                    and user.results[0].type == new.type
                ):
                    user.results[0].replace_all_uses_with(new)
                    user.detach()
                    user.erase()
    returned: set[SSAValue] = set()
    for ret in [o for o in block.ops if isinstance(o, func.ReturnOp)]:
        builder = Builder(InsertPoint.before(ret))
        new_values: list[SSAValue] = []
        for v in ret.arguments:
            if isinstance(v.owner, UnrealizedConversionCastOp) and isinstance(
                v.owner.inputs[0].type, MemRefType
            ):
                v = v.owner.inputs[0]
            if not isinstance(v.type, MemRefType):
                new_values.append(v)
                continue
            if not isinstance(v.owner, memref.AllocOp) or v in returned:
                ty = memref_type_of(v)
                alloc = builder.insert(memref.AllocOp.get(ty.element_type, shape=ty.get_shape()))
                copy_kernel(builder, v, alloc.memref)
                v = alloc.memref
            returned.add(v)
            new_values.append(v)
        new_ret = func.ReturnOp(*new_values)
        rewriter.replace_op(ret, new_ret)
    # casts whose results are unused (memref -> tensor after their users were lowered)
    for op in reversed(list(block.walk())):
        if isinstance(op, UnrealizedConversionCastOp) and not any(r.uses for r in op.results):
            op.detach()
            op.erase()
    outputs = []
    ret_op = block.last_op
    if isinstance(ret_op, func.ReturnOp):
        outputs = [v.type for v in ret_op.arguments]
    else:
        outputs = list(f.function_type.outputs.data)
    f.function_type = func.FunctionType.from_lists([a.type for a in block.args], outputs)


def uniquify_kernel_labels(f: func.FuncOp) -> None:
    """Number repeated kernel labels (`conv`, `conv_1`, ...) so schedules can name each
    kernel of a function."""
    seen: dict[str, int] = {}
    taken = {k.label.data for k in f.walk() if isinstance(k, KernelOp)}
    for kernel in [k for k in f.walk() if isinstance(k, KernelOp)]:
        base = kernel.label.data
        count = seen.get(base, 0)
        seen[base] = count + 1
        if count == 0:
            continue
        while f"{base}_{count}" in taken:
            count += 1
        seen[base] = count + 1
        kernel.label = StringAttr(f"{base}_{count}")
        taken.add(kernel.label.data)


@dataclass(frozen=True)
class ConvertGraphToTlPass(ModulePass):
    """Lower every graph op to `tl.kernel`s on buffers and bufferize the functions."""

    name = "convert-graph-to-tl"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(
            GreedyRewritePatternApplier(graph_to_tl_patterns()), apply_recursively=False
        ).rewrite_module(op)
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            bufferize_function(f)
            uniquify_kernel_labels(f)
        for inner in op.walk():
            if isinstance(inner, GraphOp):
                raise fail(inner, "it was left after lowering")
            if isinstance(inner, UnrealizedConversionCastOp):
                raise GraphToTlError(
                    "convert-graph-to-tl: a tensor value crosses a non-func op boundary "
                    f"(cast {inner.inputs[0].type} -> {inner.results[0].type} left)"
                )


__all__ = [
    "HANDWRITTEN",
    "ConvertGraphToTlPass",
    "GraphToTlError",
    "LowerConstant",
    "LowerGraphOp",
    "OpSemantics",
    "add_global",
    "bufferize_function",
    "constant_buffer",
    "copy_kernel",
    "expression_of",
    "graph_to_tl_patterns",
    "handwritten",
]
