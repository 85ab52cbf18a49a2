"""Translate a specialized tensor-expression `Definition` into `tl.kernel`s over buffers.

One kernel per statement, in statement order, inserted by a `Builder`:

* iterators keep their names and kinds; an iterator ranging over ``lo..hi`` becomes a
  0-based tl iterator of extent ``hi - lo`` and is shifted back by ``lo`` in every index;
* each distinct read (tensor, index list, pad) becomes one input operand whose affine
  map is the read's index list (``/`` and ``%`` by constants become ``floordiv`` / ``mod``);
* a guarded read ``X[..] if in bounds else c`` becomes an input with pad value ``c``;
  any other guarded expression reads with pad 0 and selects the fallback with an
  in-bounds predicate computed from `tl.index` values in the body;
* a reduction ``T[..] op= e`` yields ``combiner(current, e)``; on the target's first
  write (``Statement.init``) the output gets the reduction's identity as ``init``;
* casts, math functions and ``select`` become `arith` / `math` ops of the same
  semantics (see `_emit`); locals become `memref.alloc` temporaries.

`emit_definition` is the entry point; `TranslationError` names what cannot be translated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, llvm, memref
from xdsl.dialects import math as xmath
from xdsl.dialects.builtin import (
    AnyFloat,
    BFloat16Type,
    Float16Type,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects.hw.intrinsics import Intrinsic, IntrinsicError
from mlc.dialects.tl import IndexOp, IteratorAttr, KernelOp, YieldOp, scalar_attr
from mlc.dialects.tl.affine import RESERVED_NAMES, affine_range
from mlc.texpr import (
    Binary,
    Call,
    Cast,
    Const,
    Definition,
    Expr,
    Guarded,
    Index,
    Poly,
    Read,
    Statement,
    TensorDecl,
    Unary,
    identity,
    it,
)
from mlc.texpr.affine import FloorDiv, Iter, Mod, Sym
from mlc.texpr.ast import INT_FUNCTIONS


class TranslationError(Exception):
    """A definition (or part of one) that has no `tl` translation."""


# -- types -------------------------------------------------------------------------------

_FLOATS: dict[str, Attribute] = {
    "f16": Float16Type(),
    "bf16": BFloat16Type(),
    "f32": Float32Type(),
    "f64": Float64Type(),
}


def element_type(dtype: str) -> Attribute:
    """The xDSL element type of a texpr dtype (``bool`` -> ``i1``; integers signless:
    ``u8`` -> ``i8``, the dtype carries the signedness into the ops: extui, uitofp, divui,
    cmpi ult, ...)."""
    if dtype in _FLOATS:
        return _FLOATS[dtype]
    if dtype == "bool":
        return IntegerType(1)
    if dtype[:1] in ("i", "u") and dtype[1:].isdigit():
        return IntegerType(int(dtype[1:]))
    raise TranslationError(f"element type {dtype} has no signless tl equivalent")


def _is_float(dtype: str) -> bool:
    return dtype in _FLOATS


def _is_unsigned(dtype: str) -> bool:
    return dtype.startswith("u")


# -- index expressions --------------------------------------------------------------------


def poly_to_affine(poly: Poly, dims: Mapping[str, int]) -> AffineExpr:
    """``poly`` (specialized: no sizes) as an affine expression over iterator positions."""
    result: AffineExpr = AffineExpr.constant(0)
    for mono, coeff in poly.terms:
        term: AffineExpr | None = None
        for atom in mono:
            if isinstance(atom, Iter):
                if atom.name not in dims:
                    raise TranslationError(f"index uses unknown iterator `{atom.name}`")
                factor = AffineExpr.dimension(dims[atom.name])
            elif isinstance(atom, FloorDiv | Mod):
                if not atom.den.is_const() or atom.den.const_value() <= 0:
                    raise TranslationError(f"`{poly}`: divisor is not a positive constant")
                num = poly_to_affine(atom.num, dims)
                den = atom.den.const_value()
                factor = num // den if isinstance(atom, FloorDiv) else num % den
            else:
                assert isinstance(atom, Sym)
                raise TranslationError(f"`{poly}`: size `{atom.name}` is not specialized")
            if term is not None:
                raise TranslationError(f"index `{poly}` is not affine in the iterators")
            term = factor
        piece = AffineExpr.constant(coeff) if term is None else term * coeff
        result = result + piece
    return result


# -- kernels ------------------------------------------------------------------------------


@dataclass
class _Operand:
    buffer: SSAValue
    exprs: tuple[AffineExpr, ...]
    pad: float | int | bool | None


@dataclass
class _KernelBuilder:
    """Collects the operands of one statement's kernel while its body is emitted."""

    stmt: Statement
    buffers: Mapping[str, SSAValue]
    dims: dict[str, int]
    shifts: dict[str, int]
    extents: list[int]
    inputs: list[_Operand] = field(default_factory=list)
    block: Block = field(default_factory=Block)

    def __post_init__(self) -> None:
        self.builder = Builder(InsertPoint.at_end(self.block))
        self.index_cache: dict[str, SSAValue] = {}
        self.guard_depth = 0
        # `shifted`'s results for the current `shifts` (a statement reads the same
        # indices many times)
        self._shifted_for: dict[str, int] | None = None
        self._shifted: dict[Poly, Poly] = {}

    def shifted(self, poly: Poly) -> Poly:
        """``poly`` over 0-based tl iterators."""
        if self._shifted_for is not self.shifts:
            self._shifted_for, self._shifted = self.shifts, {}
        found = self._shifted.get(poly)
        if found is None:
            subs = {n: it(n) + s for n, s in self.shifts.items() if s}
            found = self._shifted[poly] = poly.substitute(subs) if subs else poly
        return found

    def read(self, expr: Read, pad: float | int | bool | None) -> SSAValue:
        """The block argument of the input operand reading ``expr`` (added if new)."""
        if expr.tensor not in self.buffers:
            raise TranslationError(f"no buffer for tensor `{expr.tensor}`")
        exprs = tuple(poly_to_affine(self.shifted(i), self.dims) for i in expr.indices)
        buffer = self.buffers[expr.tensor]
        for k, op in enumerate(self.inputs):
            if op.buffer == buffer and op.exprs == exprs and op.pad == pad:
                return self.block.args[k + 1]  # argument 0 is the output's (moved last later)
        self.inputs.append(_Operand(buffer, exprs, pad))
        return self.block.insert_arg(element_type(expr.dtype), len(self.inputs))

    def insert(self, op: Operation) -> SSAValue:
        self.builder.insert(op)
        return op.results[0]

    def constant(self, value: float | int | bool, dtype: str) -> SSAValue:
        ty = element_type(dtype) if dtype != "index" else IndexType()
        if isinstance(ty, AnyFloat):
            attr: Attribute = FloatAttr(float(value), ty)
        else:
            attr = scalar_attr(int(value), ty) if dtype != "index" else IntegerAttr(int(value), ty)
        return self.insert(arith.ConstantOp(attr, ty))

    def index_value(self, poly: Poly) -> SSAValue:
        """``poly`` (over the original iterators) computed as an ``index`` value."""
        poly = self.shifted(poly)
        total: SSAValue | None = None
        for mono, coeff in poly.terms:
            value: SSAValue | None = None
            for atom in mono:
                if isinstance(atom, Iter):
                    if atom.name not in self.index_cache:
                        self.index_cache[atom.name] = self.insert(IndexOp(atom.name))
                    factor = self.index_cache[atom.name]
                elif isinstance(atom, FloorDiv | Mod):
                    num = self.index_value_raw(atom.num)
                    den = self.constant(atom.den.const_value(), "index")
                    quot = self.insert(arith.FloorDivSIOp(num, den))
                    if isinstance(atom, Mod):
                        prod = self.insert(arith.MuliOp(quot, den))
                        quot = self.insert(arith.SubiOp(num, prod))
                    factor = quot
                else:
                    raise TranslationError(f"index `{poly}` has an unspecialized size")
                value = factor if value is None else self.insert(arith.MuliOp(value, factor))
            if value is None:
                value = self.constant(coeff, "index")
            elif coeff != 1:
                value = self.insert(arith.MuliOp(value, self.constant(coeff, "index")))
            total = value if total is None else self.insert(arith.AddiOp(total, value))
        return total if total is not None else self.constant(0, "index")

    def index_value_raw(self, poly: Poly) -> SSAValue:
        """Like `index_value` for a polynomial already over the 0-based iterators."""
        saved, self.shifts = self.shifts, {}
        try:
            return self.index_value(poly)
        finally:
            self.shifts = saved

    def ranges(self) -> list[tuple[int, int]]:
        return [(0, e - 1) for e in self.extents]


def _guard_reads(expr: Expr) -> list[Read]:
    """The reads a `Guarded` subject's bound check covers (not those of nested guards)."""
    if isinstance(expr, Read):
        return [expr]
    if isinstance(expr, Guarded):
        return []
    out: list[Read] = []
    for child in _children(expr):
        out.extend(_guard_reads(child))
    return out


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Unary | Cast):
        return (expr.operand,)
    if isinstance(expr, Binary):
        return (expr.lhs, expr.rhs)
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Guarded):
        return (expr.subject, expr.fallback)
    return ()


_CMPF = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "une"}
_CMPI = {"<": "slt", "<=": "sle", ">": "sgt", ">=": "sge", "==": "eq", "!=": "ne"}
_MATH: dict[str, Callable[[SSAValue], Operation]] = {
    "exp": xmath.ExpOp,
    "expm1": xmath.ExpM1Op,
    "log": xmath.LogOp,
    "log1p": xmath.Log1pOp,
    "sqrt": xmath.SqrtOp,
    "rsqrt": xmath.RsqrtOp,
    "tanh": xmath.TanhOp,
    "erf": xmath.ErfOp,
    "sin": xmath.SinOp,
    "cos": xmath.CosOp,
    "tan": xmath.TanOp,
    "asin": xmath.AsinOp,
    "acos": xmath.AcosOp,
    "atan": xmath.AtanOp,
    "sinh": xmath.SinhOp,
    "cosh": xmath.CoshOp,
    "asinh": xmath.AsinhOp,
    "acosh": xmath.AcoshOp,
    "atanh": xmath.AtanhOp,
    "floor": xmath.FloorOp,
    "ceil": xmath.CeilOp,
    "round": xmath.RoundEvenOp,
}

_BIT_FUNCTIONS: dict[str, Callable[[SSAValue, SSAValue], Operation]] = {
    "bitand": arith.AndIOp,
    "bitor": arith.OrIOp,
    "bitxor": arith.XOrIOp,
    "shl": arith.ShLIOp,
}


def _bit_function(kb: _KernelBuilder, fn: str, ty: str, args: Sequence[SSAValue]) -> SSAValue:
    """Integer bit functions; shifts take the amount unsigned, as texpr defines them (the
    LLVM lowering of arith's shifts gives 0, or the sign, for amounts >= the width)."""
    if _is_float(ty) or ty == "bool":
        raise TranslationError(f"`{fn}` on {ty} has no tl translation")
    if fn == "bitnot":
        return kb.insert(arith.XOrIOp(args[0], kb.constant(-1, ty)))
    if fn == "shr":
        shift = arith.ShRUIOp if _is_unsigned(ty) else arith.ShRSIOp
        return kb.insert(shift(args[0], args[1]))
    return kb.insert(_BIT_FUNCTIONS[fn](args[0], args[1]))


def _emit(
    kb: _KernelBuilder, expr: Expr, env: Mapping[tuple[str, tuple[Poly, ...]], SSAValue]
) -> SSAValue:
    """Scalar ops computing ``expr`` at one point; ``env`` holds reads of the target."""
    b = kb
    if isinstance(expr, Const):
        return b.constant(expr.value, expr.dtype)
    if isinstance(expr, Read):
        key = (expr.tensor, expr.indices)
        if key in env:
            return env[key]
        if expr.tensor == kb.stmt.target:
            raise TranslationError(
                f"statement reads its target `{expr.tensor}` at other indices than it writes"
            )
        # inside a guard's subject, out-of-bounds reads yield a placeholder the select drops
        pad = (False if expr.dtype == "bool" else 0) if kb.guard_depth else None
        return b.read(expr, pad)
    if isinstance(expr, Index):
        value = b.index_value(expr.expr)
        return b.insert(arith.IndexCastOp(value, element_type(expr.dtype)))
    if isinstance(expr, Unary):
        x = _emit(kb, expr.operand, env)
        if expr.op == "not":
            return b.insert(arith.XOrIOp(x, b.constant(True, "bool")))
        if _is_float(expr.dtype):
            return b.insert(arith.NegfOp(x))
        return b.insert(arith.SubiOp(b.constant(0, expr.dtype), x))
    if isinstance(expr, Binary):
        return _binary(kb, expr, _emit(kb, expr.lhs, env), _emit(kb, expr.rhs, env))
    if isinstance(expr, Cast):
        return _cast(kb, _emit(kb, expr.operand, env), expr.operand.dtype, expr.dtype)
    if isinstance(expr, Call):
        return _call(kb, expr, [_emit(kb, a, env) for a in expr.args])
    assert isinstance(expr, Guarded)
    return _guarded(kb, expr, env)


def _binary(kb: _KernelBuilder, expr: Binary, x: SSAValue, y: SSAValue) -> SSAValue:
    op, ty = expr.op, expr.lhs.dtype
    if op in ("and", "or"):
        return kb.insert(arith.AndIOp(x, y) if op == "and" else arith.OrIOp(x, y))
    if op in _CMPF:
        if _is_float(ty):
            return kb.insert(arith.CmpfOp(x, y, _CMPF[op]))
        pred = _CMPI[op]
        if (_is_unsigned(ty) or ty == "bool") and pred[0] == "s":
            pred = "u" + pred[1:]
        return kb.insert(arith.CmpiOp(x, y, pred))
    if _is_float(ty) and op == "%":
        # C fmod, exact (x - trunc(x / y) * y is not: 1e30 % 3.1, 1 % inf); xDSL has no
        # arith.remf, so LLVM's frem itself (a libm fmod call per lane)
        return kb.insert(llvm.FRemOp(x, y))
    if _is_float(ty):
        table: dict[str, type[Operation]] = {
            "+": arith.AddfOp,
            "-": arith.SubfOp,
            "*": arith.MulfOp,
            "/": arith.DivfOp,
        }
        return kb.insert(table[op](x, y))  # type: ignore[call-arg]
    if ty == "bool":
        if op == "+":
            return kb.insert(arith.OrIOp(x, y))
        if op == "*":
            return kb.insert(arith.AndIOp(x, y))
        raise TranslationError(f"`{op}` on bool has no tl translation")
    unsigned = _is_unsigned(ty)
    itable: dict[str, type[Operation]] = {
        "+": arith.AddiOp,
        "-": arith.SubiOp,
        "*": arith.MuliOp,
        "/": arith.DivUIOp if unsigned else arith.DivSIOp,
        "%": arith.RemUIOp if unsigned else arith.RemSIOp,
    }
    return kb.insert(itable[op](x, y))  # type: ignore[call-arg]


def _cast(kb: _KernelBuilder, x: SSAValue, src: str, dst: str) -> SSAValue:
    if src == dst:
        return x
    dst_ty = element_type(dst)
    if dst == "bool":
        zero = kb.constant(0, src)
        if _is_float(src):
            return kb.insert(arith.CmpfOp(x, zero, "une"))
        return kb.insert(arith.CmpiOp(x, zero, "ne"))
    if _is_float(src) and _is_float(dst):
        wider = _width(dst) > _width(src)
        if {src, dst} == {"f16", "bf16"}:
            x = kb.insert(arith.ExtFOp(x, Float32Type()))
            return kb.insert(arith.TruncFOp(x, dst_ty))
        return kb.insert(arith.ExtFOp(x, dst_ty) if wider else arith.TruncFOp(x, dst_ty))
    if _is_float(dst):
        if _is_unsigned(src) or src == "bool":
            return kb.insert(arith.UIToFPOp(x, dst_ty))
        return kb.insert(arith.SIToFPOp(x, dst_ty))
    if _is_float(src):
        if _is_unsigned(dst):
            return kb.insert(arith.FPToUIOp(x, dst_ty))
        return kb.insert(arith.FPToSIOp(x, dst_ty))
    sw, dw = _width(src), _width(dst)
    if dw == sw:
        return x  # signless: the same bits
    if dw < sw:
        return kb.insert(arith.TruncIOp(x, dst_ty))
    if _is_unsigned(src) or src == "bool":
        return kb.insert(arith.ExtUIOp(x, dst_ty))
    return kb.insert(arith.ExtSIOp(x, dst_ty))


def _width(dtype: str) -> int:
    if dtype == "bool":
        return 1
    return int(dtype.lstrip("biuf") or 16)


def _call(kb: _KernelBuilder, expr: Call, args: Sequence[SSAValue]) -> SSAValue:
    fn, ty = expr.fn, expr.dtype
    if fn == "select":
        return kb.insert(arith.SelectOp(args[0], args[1], args[2]))
    if fn in ("max", "min"):
        x, y = args
        if _is_float(ty):
            return kb.insert(arith.MaximumfOp(x, y) if fn == "max" else arith.MinimumfOp(x, y))
        if ty == "bool":
            return kb.insert(arith.OrIOp(x, y) if fn == "max" else arith.AndIOp(x, y))
        if _is_unsigned(ty):
            return kb.insert(arith.MaxUIOp(x, y) if fn == "max" else arith.MinUIOp(x, y))
        return kb.insert(arith.MaxSIOp(x, y) if fn == "max" else arith.MinSIOp(x, y))
    if fn == "abs":
        if _is_float(ty):
            return kb.insert(xmath.AbsFOp(args[0]))
        if _is_unsigned(ty) or ty == "bool":
            return args[0]
        return kb.insert(xmath.AbsIOp(args[0]))
    if fn in INT_FUNCTIONS:
        return _bit_function(kb, fn, ty, args)
    if not _is_float(ty):
        raise TranslationError(f"`{fn}` on {ty} has no tl translation")
    if fn == "pow":
        return kb.insert(xmath.PowFOp(args[0], args[1]))
    if fn == "sigmoid":  # 1 / (1 + exp(-x))
        neg = kb.insert(arith.NegfOp(args[0]))
        e = kb.insert(xmath.ExpOp(neg))
        one = kb.constant(1.0, ty)
        return kb.insert(arith.DivfOp(one, kb.insert(arith.AddfOp(one, e))))
    if fn in _MATH:
        return kb.insert(_MATH[fn](args[0]))
    raise TranslationError(f"function `{fn}` has no tl translation")


def _guarded(
    kb: _KernelBuilder, expr: Guarded, env: Mapping[tuple[str, tuple[Poly, ...]], SSAValue]
) -> SSAValue:
    """``subject if in bounds else fallback``: a pad value, or a predicate and a select."""
    subject, fallback = expr.subject, expr.fallback
    if isinstance(subject, Read) and isinstance(fallback, Const) and subject.tensor in kb.buffers:
        return kb.read(subject, fallback.value)
    checks: list[SSAValue] = []
    for r in _guard_reads(subject):
        shape = kb.buffers[r.tensor].type
        assert isinstance(shape, MemRefType)
        for index, size in zip(r.indices, shape.get_shape(), strict=True):
            aff = poly_to_affine(kb.shifted(index), kb.dims)
            lo, hi = affine_range(aff, kb.ranges())
            if lo >= 0 and hi < size:
                continue
            value = kb.index_value(index)
            ge = kb.insert(arith.CmpiOp(value, kb.constant(0, "index"), "sge"))
            lt = kb.insert(arith.CmpiOp(value, kb.constant(size, "index"), "slt"))
            checks.extend([ge, lt])
    kb.guard_depth += 1
    try:
        value = _emit(kb, subject, env)
    finally:
        kb.guard_depth -= 1
    other = _emit(kb, fallback, env)
    if not checks:
        return value
    cond = checks[0]
    for c in checks[1:]:
        cond = kb.insert(arith.AndIOp(cond, c))
    return kb.insert(arith.SelectOp(cond, value, other))


_COMBINERS: dict[str, Callable[[str], Callable[[SSAValue, SSAValue], Operation]]] = {
    "+=": lambda t: arith.AddfOp if _is_float(t) else arith.OrIOp if t == "bool" else arith.AddiOp,
    "*=": lambda t: arith.MulfOp if _is_float(t) else arith.AndIOp if t == "bool" else arith.MuliOp,
    "max=": lambda t: (
        arith.MaximumfOp
        if _is_float(t)
        else arith.OrIOp
        if t == "bool"
        else arith.MaxUIOp
        if _is_unsigned(t)
        else arith.MaxSIOp
    ),
    "min=": lambda t: (
        arith.MinimumfOp
        if _is_float(t)
        else arith.AndIOp
        if t == "bool"
        else arith.MinUIOp
        if _is_unsigned(t)
        else arith.MinSIOp
    ),
}


def _tl_name(name: str, taken: set[str]) -> str:
    new = name
    while new in RESERVED_NAMES or new in taken:
        new += "_"
    return new


def statement_kernel(
    stmt: Statement, defn: Definition, buffers: Mapping[str, SSAValue], label: str
) -> KernelOp | None:
    """The kernel of one statement (``None`` when its domain is empty)."""
    extents: list[int] = []
    for itr in stmt.iterators:
        if not (itr.lower.is_const() and itr.upper.is_const()):
            raise TranslationError(f"iterator `{itr.name}` of `{defn.name}` has a symbolic range")
        extents.append(max(0, itr.upper.const_value() - itr.lower.const_value()))
    n_par = len(stmt.parallel)
    if any(e == 0 for e in extents[:n_par]):
        return None
    if any(e == 0 for e in extents[n_par:]):
        if stmt.op == "=" or not stmt.init:
            return None
        # an empty reduction: the target is the identity
        stmt = Statement(
            stmt.target,
            stmt.indices,
            "=",
            Const(identity(stmt.op, _target_dtype(defn, stmt)), _target_dtype(defn, stmt)),
            stmt.parallel,
            True,
        )
        extents = extents[:n_par]
    # iterator names: tl reserves a few words; rename in the map (dims by position)
    taken: set[str] = set()
    names = []
    for itr in stmt.iterators:
        names.append(_tl_name(itr.name, taken))
        taken.add(names[-1])
    dims = {itr.name: k for k, itr in enumerate(stmt.iterators)}
    shifts = {itr.name: itr.lower.const_value() for itr in stmt.iterators}
    kb = _KernelBuilder(stmt, buffers, dims, shifts, extents)
    dtype = _target_dtype(defn, stmt)
    out_type = element_type(dtype)
    out_arg = kb.block.insert_arg(out_type, 0)
    # the target's current value is the output's body argument
    target_index = tuple(it(n) for n in stmt.indices)
    env = {(stmt.target, target_index): out_arg}
    value = _emit(kb, stmt.body, env)
    if stmt.op != "=":
        value = kb.insert(_COMBINERS[stmt.op](dtype)(out_arg, value))
    kb.builder.insert(YieldOp(value))
    # the output argument was inserted first: move it after the inputs
    block = kb.block
    n_in = len(kb.inputs)
    final = Block(arg_types=[*(a.type for a in block.args[1:]), out_type])
    for old, new in zip([*block.args[1:], block.args[0]], final.args, strict=True):
        old.replace_all_uses_with(new)
    for op in list(block.ops):
        op.detach()
        final.add_op(op)
    target = buffers[stmt.target]
    out_map = tuple(poly_to_affine(kb.shifted(p), dims) for p in target_index)
    init: Attribute = UnitAttr()
    if stmt.op != "=" and stmt.init:
        init = scalar_attr(identity(stmt.op, dtype), out_type)
    pads: list[Attribute] = [
        UnitAttr() if o.pad is None else scalar_attr(o.pad, a.type)
        for o, a in zip(kb.inputs, final.args[:n_in], strict=True)
    ]
    n = len(extents)
    maps = [AffineMap(n, 0, o.exprs) for o in kb.inputs] + [AffineMap(n, 0, out_map)]
    iterators = [
        IteratorAttr(name, extent, itr.kind)
        for name, extent, itr in zip(names, extents, stmt.iterators, strict=False)
    ]
    return KernelOp(
        label,
        iterators,
        [o.buffer for o in kb.inputs],
        [target],
        maps,
        pads,
        [init],
        Region(final),
    )


def _target_dtype(defn: Definition, stmt: Statement) -> str:
    return defn.tensor(stmt.target).dtype


def emit_definition(
    builder: Builder,
    defn: Definition,
    buffers: Mapping[str, SSAValue],
    label: str | None = None,
) -> list[Operation]:
    """Insert the kernels computing ``defn`` with ``builder``.

    ``buffers`` maps every input and output name to a memref of its shape and element
    type; locals are allocated here (`memref.alloc`). Returns the inserted ops.
    """
    if defn.inouts:
        raise TranslationError(f"`{defn.name}`: in-out tensors are not supported")
    for decl in (*defn.inputs, *defn.outputs):
        if decl.name not in buffers:
            raise TranslationError(f"`{defn.name}`: no buffer for `{decl.name}`")
    all_buffers = dict(buffers)
    inserted: list[Operation] = []
    for decl in defn.locals:
        shape = [d.const_value() for d in decl.shape]
        alloc = memref.AllocOp.get(element_type(decl.dtype), shape=shape)
        builder.insert(alloc)
        inserted.append(alloc)
        all_buffers[decl.name] = alloc.memref
    for k, stmt in enumerate(defn.statements):
        name = label or defn.name
        if len(defn.statements) > 1:
            name = f"{name}_{k}"
        kernel = statement_kernel(stmt, defn, all_buffers, name)
        if kernel is not None:
            builder.insert(kernel)
            inserted.append(kernel)
    return inserted


__all__ = [
    "TranslationError",
    "element_type",
    "emit_definition",
    "intrinsic_kernel",
    "normalized_kernel",
    "poly_to_affine",
    "statement_kernel",
    "texpr_kernel",
]


# ------------------------------------------------------------------ intrinsic kernels


def _signless(dtype: str) -> str:
    return "i" + dtype[1:] if dtype.startswith("u") else dtype


def _signless_expr(expr: Expr) -> Expr:
    """`expr` with unsigned reads re-typed signless (the casts are fixed in the kernel)."""
    if isinstance(expr, Read):
        return dataclasses.replace(expr, dtype=_signless(expr.dtype))
    if isinstance(expr, Cast):
        return dataclasses.replace(expr, operand=_signless_expr(expr.operand))
    if isinstance(expr, Unary):
        return dataclasses.replace(expr, operand=_signless_expr(expr.operand))
    if isinstance(expr, Binary):
        if expr.dtype.startswith("u") or expr.lhs.dtype.startswith("u"):
            raise IntrinsicError("unsigned arithmetic other than casts is not supported")
        return dataclasses.replace(expr, lhs=_signless_expr(expr.lhs), rhs=_signless_expr(expr.rhs))
    if isinstance(expr, Call):
        return dataclasses.replace(expr, args=tuple(_signless_expr(a) for a in expr.args))
    if isinstance(expr, Guarded):
        return dataclasses.replace(
            expr, subject=_signless_expr(expr.subject), fallback=_signless_expr(expr.fallback)
        )
    return expr


def normalized_kernel(defn: Definition) -> KernelOp:
    """The `tl.kernel` of a specialized one-statement definition over block arguments of
    a detached block (see `intrinsic_kernel`)."""
    return texpr_kernel(defn)


def intrinsic_kernel(intrinsic: Intrinsic, sizes: Mapping[str, int] | None = None) -> KernelOp:
    """The normalised `tl.kernel` of an intrinsic's declaration (what tensorize unifies a
    tile with), over block arguments of a detached block (unsigned tensors in signless
    buffers, their reads zero-extended)."""
    return normalized_kernel(intrinsic.specialized(sizes or {}))


def texpr_kernel(defn: Definition, buffers: Mapping[str, SSAValue] | None = None) -> KernelOp:
    """The `tl.kernel` of a specialized one-statement definition, over `buffers` (tensor
    name -> memref; default: arguments of a fresh detached block). Unsigned tensors are
    signless buffers whose reads are zero-extended (`arith.extui` / `arith.uitofp`): the
    tl form of u8 data (as `lowering.texpr_to_tl` makes u8 buffers i8)."""
    unsigned = {d.name for d in defn.inputs if d.dtype.startswith("u")}

    def decl(d: TensorDecl) -> TensorDecl:
        return dataclasses.replace(d, dtype=_signless(d.dtype))

    (stmt,) = defn.statements
    signless = dataclasses.replace(
        defn,
        inputs=tuple(decl(d) for d in defn.inputs),
        statements=(dataclasses.replace(stmt, body=_signless_expr(stmt.body)),),
    )
    block = Block(
        arg_types=[
            MemRefType(element_type(d.dtype), [s.const_value() for s in d.shape])
            for d in (*signless.inputs, *signless.outputs)
        ]
    )
    detached = buffers is None
    if buffers is None:
        buffers = {d.name: a for d, a in zip((*signless.inputs, *signless.outputs), block.args)}
    st: Statement = signless.statements[0]
    kernel = statement_kernel(st, signless, buffers, defn.name)
    if kernel is None:
        raise IntrinsicError(f"`{defn.name}` has an empty iteration domain")
    unsigned_buffers = {buffers[n] for n in unsigned}
    body = kernel.body.block
    for arg, buf in zip(body.args, kernel.inputs):
        if buf not in unsigned_buffers:
            continue
        for use in list(arg.uses):
            user = use.operation
            new: Operation
            if isinstance(user, arith.ExtSIOp):
                new = arith.ExtUIOp(user.input, user.result.type)
            elif isinstance(user, arith.SIToFPOp):
                new = arith.UIToFPOp(user.input, user.result.type)
            else:
                raise IntrinsicError(
                    f"`{defn.name}`: an unsigned read may only be widened (used by {user.name})"
                )
            parent = user.parent_block()
            assert parent is not None
            parent.insert_op_before(new, user)
            user.results[0].replace_all_uses_with(new.results[0])
            parent.erase_op(user)
    if detached:
        block.add_op(kernel)
    return kernel
