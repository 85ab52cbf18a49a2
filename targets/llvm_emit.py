"""xDSL `llvm` dialect -> LLVM IR text.

    text = emit_module(module, triple, data_layout)       # a str LLVM parses
    text = emit_module(ops, triple, layout, constants)    # large constants left out

Each op is printed as LLVM assembly directly (`OP_EMITTERS`, one function per op class):
building llvmlite IR objects and printing them took about 9 % of a ResNet-50's compile,
printing text is about a third of that. Types are printed through xDSL's public
`convert_type`, once per type. Beyond a plain translation:

- globals: dense initializers are emitted from their raw little-endian bytes as one
  `[n x i8]` string constant; splats are expanded; globals without a value are
  zero-initialized, never external. With `external_constants` (the JIT), constants of
  `EXTERNAL_MIN_BYTES` or more are only declared and their bytes collected instead: the
  JIT binds the symbols to memory it holds, so a model's weights never go through LLVM IR
  text (about 10 s of printing and parsing for a ResNet-50's 100 MB).
  `content_address_constants` names them by content first, so that a symbol always means
  the same bytes in a process;
- function declarations: `llvm.noalias` / `llvm.align` argument attributes; functions and
  intrinsics that are called but not defined are declared once;
- blocks: block arguments are phis, their incoming values taken from the branches;
- libm calls: `llvm.call_intrinsic "llvm.mlc.libm.<fn>"` (math functions LLVM has no
  intrinsic for, see `lowering.arith_to_llvm._libm`) calls `<fn>f` / `<fn>`, per lane for
  vector operands; `llvm.call_intrinsic "llvm.mlc.vecmath.<symbol>"`
  (`lowering.llvm_vector_math`) calls the whole-vector function `<symbol>` (defined in
  the module when it is one of `targets.inline_math`'s);
- `llvmx.fcmp` (vector lanes), `llvmx.fptosi` and `llvmx.extractelement`, which xDSL's
  llvm dialect lacks; masked loads / stores are `llvm.call_intrinsic` of `llvm.masked.*`;
- types: `f16` is LLVM `half`; `bf16` never reaches here: the LLVM lowering keeps it as
  `i16` bits and converts with integer ops.

Not emitted: loop metadata, tail-call markers and calling conventions (the lowering makes
none); an op without an emitter is an `EmitError` naming it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence
from functools import cache

from llvmlite import binding as llvm_binding
from llvmlite import ir
from xdsl.backend.llvm.convert_type import convert_type
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue

from mlc.dialects import llvmx
from mlc.lowering.arith_to_llvm import LIBM_PREFIX
from mlc.lowering.llvm_vector_math import PREFIX as VECMATH_PREFIX
from mlc.targets.inline_math import define_inline, is_inline

__all__ = [
    "CONSTANT_PREFIX",
    "EXTERNAL_MIN_BYTES",
    "EmitError",
    "OP_EMITTERS",
    "FunctionText",
    "constant_digest",
    "content_address_constants",
    "emit_module",
]


class EmitError(Exception):
    """An llvm-dialect construct the emitter cannot translate."""


@cache
def type_text(ty: Attribute) -> str:
    """`ty` in LLVM assembly (`<16 x float>`, `ptr`, `i64`, ...)."""
    try:
        return str(convert_type(ty))
    except Exception as e:  # xDSL's converter raises its own exception type
        raise EmitError(f"type {ty} has no LLVM equivalent: {e}") from None


def _float_text(value: float, ty: ir.Type) -> str:
    """A float constant as LLVM prints it: the bits of the double of equal value (the
    value first rounded to `ty`)."""
    if isinstance(ty, ir.FloatType):
        value = struct.unpack("<f", struct.pack("<f", value))[0]
    elif isinstance(ty, ir.HalfType):
        value = struct.unpack("<e", struct.pack("<e", value))[0]
    return f"0x{struct.unpack('<Q', struct.pack('<d', value))[0]:016x}"


def _scalar_text(value: int | float, ty: ir.Type) -> str:
    if isinstance(ty, ir.IntType):
        return ("true" if value else "false") if ty.width == 1 else str(int(value))
    return _float_text(float(value), ty)


def _constant_text(value: Attribute, ty: Attribute) -> str:
    """The operand text (no type) of `llvm.mlir.constant(value) : ty`."""
    lty = convert_type(ty)
    if isinstance(value, IntegerAttr | FloatAttr):
        return _scalar_text(value.value.data, lty)
    if isinstance(value, DenseIntOrFPElementsAttr) and isinstance(lty, ir.VectorType):
        element = lty.element
        values = value.get_values()
        if len(values) == 1:
            values = values * lty.count
        if len(values) != lty.count:
            raise EmitError(f"constant {value} has {len(values)} lanes, its type {lty.count}")
        return "<" + ", ".join(f"{element} {_scalar_text(v, element)}" for v in values) + ">"
    raise EmitError(f"unsupported constant {value} : {ty}")


def _bytes_text(raw: bytes) -> str:
    """`raw` as an LLVM string constant body (`c"..."`)."""
    return 'c"' + raw.decode("latin-1").translate(_ESCAPES) + '"'


_ESCAPES = {
    b: (chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:02X}") for b in range(256)
}


class FunctionText:
    """The text of one function being emitted: SSA names, blocks, the module's
    declarations it needs."""

    def __init__(self, module: ModuleText) -> None:
        self.module = module
        self.lines: list[str] = []
        self.names: dict[SSAValue, str] = {}
        self.block_names: dict[Block, str] = {}
        self._next = 0

    def fresh(self) -> str:
        self._next += 1
        return f"%v{self._next}"

    def ref(self, value: SSAValue) -> str:
        """`value`'s operand text without its type (a name, or a constant's text)."""
        name = self.names.get(value)
        if name is None:
            owner = value.owner
            if isinstance(owner, llvm.ConstantOp):
                name = _constant_text(owner.value, value.type)
            elif isinstance(owner, llvm.UndefOp):
                name = "undef"
            elif isinstance(owner, llvm.ZeroOp):
                name = "zeroinitializer"
            elif isinstance(owner, llvm.AddressOfOp):
                name = _global_ref(owner.global_name.root_reference.data)
            else:
                name = self.fresh()
            self.names[value] = name
        return name

    def operand(self, value: SSAValue) -> str:
        """`value` with its type: `float %v3`."""
        return f"{type_text(value.type)} {self.ref(value)}"

    def block(self, block: Block) -> str:
        name = self.block_names.get(block)
        if name is None:
            name = self.block_names[block] = f"bb{len(self.block_names)}"
        return name

    def assign(self, result: SSAValue, text: str) -> None:
        """`%result = text`."""
        self.lines.append(f"  {self.ref(result)} = {text}")

    def emit(self, text: str) -> None:
        self.lines.append(f"  {text}")


class ModuleText:
    """Declarations and definitions of one module, by symbol."""

    def __init__(self) -> None:
        self.declarations: dict[str, str] = {}
        self.definitions: dict[str, str] = {}
        self.defined: set[str] = set()
        #: variadic functions: their type, which a call of one must spell out
        self.variadic: dict[str, str] = {}

    def declare(self, name: str, ret: str, args: Sequence[str], variadic: bool = False) -> None:
        """`declare ret @name(args)` unless `name` is defined or declared already."""
        if name not in self.defined and name not in self.declarations:
            params = ", ".join([*args, *(["..."] if variadic else [])])
            self.declarations[name] = f"declare {ret} {_global_ref(name)}({params})"

    def define_inline(self, symbol: str) -> None:
        """`targets.inline_math`'s `symbol`, defined once (with what it declares)."""
        if symbol in self.definitions:
            return
        scratch = ir.Module()
        define_inline(scratch, symbol)
        for name, value in scratch.globals.items():
            if isinstance(value, ir.Function) and value.is_declaration:
                self.declarations.setdefault(name, str(value).strip())
            else:
                self.definitions[name] = str(value)
        self.defined.add(symbol)
        self.declarations.pop(symbol, None)


def _global_ref(name: str) -> str:
    return f'@"{name}"'


OpEmitter = Callable[[Operation, FunctionText], None]
#: the emitter of each op class (add one to emit an op of a new dialect)
OP_EMITTERS: dict[type[Operation], OpEmitter] = {}


def _emits(*classes: type[Operation]) -> Callable[[OpEmitter], OpEmitter]:
    def register(fn: OpEmitter) -> OpEmitter:
        for cls in classes:
            OP_EMITTERS[cls] = fn
        return fn

    return register


_INT_BINARY = {
    llvm.AddOp: "add",
    llvm.SubOp: "sub",
    llvm.MulOp: "mul",
    llvm.ShlOp: "shl",
    llvm.UDivOp: "udiv",
    llvm.SDivOp: "sdiv",
    llvm.URemOp: "urem",
    llvm.SRemOp: "srem",
    llvm.LShrOp: "lshr",
    llvm.AShrOp: "ashr",
    llvm.AndOp: "and",
    llvm.OrOp: "or",
    llvm.XOrOp: "xor",
}
_FLOAT_BINARY = {
    llvm.FAddOp: "fadd",
    llvm.FSubOp: "fsub",
    llvm.FMulOp: "fmul",
    llvm.FDivOp: "fdiv",
    llvm.FRemOp: "frem",
}


@cache
def _overflow_flags(bits: int) -> str:
    return "".join(f" {flag.value}" for flag in llvm.OverflowAttr.from_int(bits).data)


def _fastmath(flags: Attribute | None) -> str:
    if not isinstance(flags, llvm.FastMathAttr):
        return ""
    return "".join(f" {flag.value}" for flag in sorted(flags.data, key=_FASTMATH_ORDER.index))


_FASTMATH_ORDER = list(llvm.FastMathFlag)


def _binary_flags(op: Operation) -> str:
    if isinstance(op, llvm.ArithmeticBinOpOverflow):
        flags = op.overflowFlags
        return _overflow_flags(flags.value.data) if isinstance(flags, IntegerAttr) else ""
    if isinstance(op, llvm.ArithmeticBinOpExact):
        return " exact" if op.is_exact else ""
    if isinstance(op, llvm.ArithmeticBinOpDisjoint):
        return " disjoint" if op.is_disjoint else ""
    return ""


def _two_operands(
    f: FunctionText, result: SSAValue, head: str, lhs: SSAValue, rhs: SSAValue
) -> None:
    """`%result = head <type> lhs, rhs` (binary arithmetic and comparisons: both operands
    of one type)."""
    f.assign(result, f"{head} {f.operand(lhs)}, {f.ref(rhs)}")


@_emits(*_INT_BINARY)
def _int_binary(op: Operation, f: FunctionText) -> None:
    name = _INT_BINARY[type(op)]  # type: ignore[index]
    _two_operands(f, op.results[0], f"{name}{_binary_flags(op)}", *op.operands)


@_emits(*_FLOAT_BINARY)
def _float_binary(op: Operation, f: FunctionText) -> None:
    name = _FLOAT_BINARY[type(op)]  # type: ignore[index]
    flags = _fastmath(op.properties.get("fastmathFlags"))
    _two_operands(f, op.results[0], f"{name}{flags}", *op.operands)


@_emits(llvm.FNegOp)
def _fneg(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.FNegOp)
    f.assign(op.res, f"fneg{_fastmath(op.fastmathFlags)} {f.operand(op.arg)}")


@_emits(llvm.ICmpOp)
def _icmp(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.ICmpOp)
    pred = llvm.ICmpPredicateFlag.from_int(op.predicate.value.data).value
    _two_operands(f, op.results[0], f"icmp {pred}", op.lhs, op.rhs)


@_emits(llvm.FCmpOp)
def _fcmp(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.FCmpOp)
    pred = llvm.FCmpPredicateFlag.from_int(op.predicate.value.data).value.lstrip("_")
    _two_operands(f, op.results[0], f"fcmp{_fastmath(op.fastmathFlags)} {pred}", op.lhs, op.rhs)


@_emits(llvmx.FCmpOp)
def _fcmp_lanes(op: Operation, f: FunctionText) -> None:
    """`llvmx.fcmp` (scalars or vectors), its predicate by name."""
    assert isinstance(op, llvmx.FCmpOp)
    _two_operands(f, op.res, f"fcmp {op.predicate.data}", op.lhs, op.rhs)


_CASTS = {
    llvm.TruncOp: "trunc",
    llvm.ZExtOp: "zext",
    llvm.SExtOp: "sext",
    llvm.PtrToIntOp: "ptrtoint",
    llvm.IntToPtrOp: "inttoptr",
    llvm.BitcastOp: "bitcast",
    llvm.FPExtOp: "fpext",
    llvm.FPTruncOp: "fptrunc",
    llvm.SIToFPOp: "sitofp",
    llvmx.FPToSIOp: "fptosi",
}


@_emits(*_CASTS)
def _cast(op: Operation, f: FunctionText) -> None:
    flags = ""
    if isinstance(op, llvm.IntegerConversionOpOverflow) and op.overflowFlags:
        flags = "".join(f" {flag.value}" for flag in op.overflowFlags.data)
    elif isinstance(op, llvm.IntegerConversionOpNNeg) and op.non_neg:
        flags = " nneg"
    name = _CASTS[type(op)]  # type: ignore[index]
    result = op.results[0]
    f.assign(result, f"{name}{flags} {f.operand(op.operands[0])} to {type_text(result.type)}")


@_emits(llvm.SelectOp)
def _select(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.SelectOp)
    f.assign(op.res, f"select {f.operand(op.cond)}, {f.operand(op.lhs)}, {f.operand(op.rhs)}")


@_emits(llvm.GEPOp)
def _gep(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.GEPOp)
    dynamic = iter(op.ssa_indices)
    indices = [
        f.operand(next(dynamic)) if i == llvm.GEP_USE_SSA_VAL else f"i32 {i}"
        for i in op.rawConstantIndices.iter_values()
    ]
    inbounds = " inbounds" if op.inbounds is not None else ""
    element = type_text(op.elem_type)
    f.assign(
        op.result, f"getelementptr{inbounds} {element}, {f.operand(op.ptr)}, {', '.join(indices)}"
    )


def _align(op: Operation) -> str:
    alignment = op.properties.get("alignment")
    return f", align {alignment.value.data}" if isinstance(alignment, IntegerAttr) else ""


@_emits(llvm.LoadOp)
def _load(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.LoadOp)
    result = op.dereferenced_value
    f.assign(result, f"load {type_text(result.type)}, {f.operand(op.ptr)}{_align(op)}")


@_emits(llvm.StoreOp)
def _store(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.StoreOp)
    f.emit(f"store {f.operand(op.value)}, {f.operand(op.ptr)}{_align(op)}")


@_emits(llvm.AllocaOp)
def _alloca(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.AllocaOp)
    element = type_text(op.elem_type)
    f.assign(op.results[0], f"alloca {element}, {f.operand(op.size)}{_align(op)}")


@_emits(llvm.InsertElementOp)
def _insert_element(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.InsertElementOp)
    text = f"{f.operand(op.vector)}, {f.operand(op.value)}, {f.operand(op.index)}"
    f.assign(op.res, f"insertelement {text}")


@_emits(llvmx.ExtractElementOp)
def _extract_element(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvmx.ExtractElementOp)
    f.assign(op.res, f"extractelement {f.operand(op.vector)}, {f.operand(op.index)}")


@_emits(llvm.ShuffleVectorOp)
def _shuffle(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.ShuffleVectorOp)
    lanes = op.mask.get_values()
    mask = ", ".join("i32 undef" if i < 0 else f"i32 {i}" for i in lanes)
    text = f"{f.operand(op.v1)}, {f.operand(op.v2)}, <{len(lanes)} x i32> <{mask}>"
    f.assign(op.res, f"shufflevector {text}")


@_emits(llvm.ConstantOp, llvm.UndefOp, llvm.ZeroOp, llvm.AddressOfOp)
def _value_only(op: Operation, f: FunctionText) -> None:
    """Constants, undef and global addresses are operand text, not instructions."""


@_emits(llvm.BrOp)
def _br(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.BrOp)
    f.emit(f"br label %{f.block(op.successor)}")


@_emits(llvm.CondBrOp)
def _cond_br(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.CondBrOp)
    then, other = f.block(op.then_block), f.block(op.else_block)
    f.emit(f"br {f.operand(op.cond)}, label %{then}, label %{other}")


@_emits(llvm.ReturnOp)
def _return(op: Operation, f: FunctionText) -> None:
    f.emit(f"ret {f.operand(op.operands[0])}" if op.operands else "ret void")


@_emits(llvm.UnreachableOp)
def _unreachable(op: Operation, f: FunctionText) -> None:
    f.emit("unreachable")


def _call(
    f: FunctionText,
    result: SSAValue | None,
    callee: str,
    args: Sequence[str],
    function_type: str | None = None,
) -> None:
    """`[%result =] call <type> @callee(args)`; the type is the result's, or the whole
    `function_type` where the callee needs one spelled out (a variadic function)."""
    ty = function_type or (type_text(result.type) if result is not None else "void")
    text = f"call {ty} {_global_ref(callee)}({', '.join(args)})"
    if result is None:
        f.emit(text)
    else:
        f.assign(result, text)


@_emits(llvm.CallOp)
def _call_op(op: Operation, f: FunctionText) -> None:
    assert isinstance(op, llvm.CallOp)
    if op.callee is None or op.op_bundle_operands:
        raise EmitError("llvm.call: indirect calls and operand bundles are not supported")
    name = op.callee.string_value()
    args = [f.operand(a) for a in op.args]
    _call(f, op.returned, name, args, f.module.variadic.get(name))


@_emits(llvm.CallIntrinsicOp)
def _call_intrinsic(op: Operation, f: FunctionText) -> None:
    """An intrinsic call, declared once; `llvm.mlc.vecmath.<symbol>` calls the
    whole-vector function `<symbol>` (`lowering.llvm_vector_math`), defined here when it
    is one of `targets.inline_math`'s; `llvm.mlc.libm.<fn>` calls libm's `<fn>f` /
    `<fn>` (`lowering.arith_to_llvm._libm`), per lane for vectors."""
    assert isinstance(op, llvm.CallIntrinsicOp)
    if op.op_bundle_operands:
        raise EmitError(f"{op.intrin.data}: operand bundles are not supported")
    name = op.intrin.data
    if name.startswith(LIBM_PREFIX):
        _libm_call(op, f, name[len(LIBM_PREFIX) :])
        return
    if name.startswith(VECMATH_PREFIX):
        name = name[len(VECMATH_PREFIX) :]
        if is_inline(name):
            f.module.define_inline(name)
    result = op.ress
    ret = type_text(result.type) if result is not None else "void"
    f.module.declare(name, ret, [type_text(a.type) for a in op.args])
    _call(f, result, name, [f.operand(a) for a in op.args])


def _libm_call(op: llvm.CallIntrinsicOp, f: FunctionText, fn: str) -> None:
    result = op.ress
    if result is None:
        raise EmitError(f"{op.intrin.data} must have a result")
    ty = convert_type(result.type)
    element = ty.element if isinstance(ty, ir.VectorType) else ty
    if isinstance(element, ir.FloatType):
        fn += "f"
    elif not isinstance(element, ir.DoubleType):
        raise EmitError(f"libm function {fn}: element type {element} is not supported")
    f.module.declare(fn, str(element), [str(element)] * len(op.args))
    if not isinstance(ty, ir.VectorType):
        _call(f, result, fn, [f.operand(a) for a in op.args])
        return
    vector = "undef"
    for lane in range(ty.count):
        lanes = []
        for a in op.args:
            lanes.append(f.fresh())
            f.emit(f"{lanes[-1]} = extractelement {f.operand(a)}, i32 {lane}")
        value = f.fresh()
        f.emit(
            f"{value} = call {element} {_global_ref(fn)}({', '.join(f'{element} {x}' for x in lanes)})"
        )
        into = f.ref(result) if lane == ty.count - 1 else f.fresh()
        f.emit(f"{into} = insertelement {ty} {vector}, {element} {value}, i32 {lane}")
        vector = into


def _emit_global(op: llvm.GlobalOp) -> str:
    value = op.value
    if isinstance(value, DenseIntOrFPElementsAttr):
        raw = _dense_bytes(op)
        if raw is None:
            size = _type_size(convert_type(op.global_type))
            raise EmitError(
                f"@{op.sym_name.data}: initializer has {len(value.data.data)} bytes, the "
                f"global {size}"
            )
        ty, init = f"[{len(raw)} x i8]", _bytes_text(raw)
    elif value is None:
        ty, init = type_text(op.global_type), "zeroinitializer"
    else:
        raise EmitError(f"@{op.sym_name.data}: unsupported initializer {value}")
    linkage = op.linkage.linkage.data
    linkage = "" if linkage == "external" else f"{linkage} "  # a definition: default linkage
    kind = "constant" if op.constant is not None else "global"
    align = f", align {op.alignment.value.data}" if op.alignment is not None else ""
    return f"{_global_ref(op.sym_name.data)} = {linkage}{kind} {ty} {init}{align}"


def _type_size(ty: ir.Type) -> int:
    if isinstance(ty, ir.ArrayType):
        return ty.count * _type_size(ty.element)
    if isinstance(ty, ir.IntType):
        return max(ty.width // 8, 1)
    if isinstance(ty, ir.HalfType):
        return 2
    if isinstance(ty, ir.FloatType):
        return 4
    if isinstance(ty, ir.DoubleType):
        return 8
    raise EmitError(f"no size for global element type {ty}")


#: constants at least this large are left out of the IR with `external_constants`
EXTERNAL_MIN_BYTES = 256
#: the symbol prefix of content-addressed constants
CONSTANT_PREFIX = "mlc_const_"


def _dense_bytes(op: llvm.GlobalOp) -> bytes | None:
    """The bytes of a global's dense initializer, a splat expanded; None without one, or
    when its size is not the global's."""
    value = op.value
    if not isinstance(value, DenseIntOrFPElementsAttr):
        return None
    raw = bytes(value.data.data)
    size = _type_size(convert_type(op.global_type))
    if len(raw) != size and size % max(len(raw), 1) == 0:
        raw = raw * (size // len(raw))  # a splat
    return raw if len(raw) == size else None


def _raw_bytes(op: llvm.GlobalOp) -> bytes | None:
    """The bytes of a constant global (`_dense_bytes`); None for a variable."""
    return _dense_bytes(op) if op.constant is not None else None


def content_address_constants(module: ModuleOp) -> None:
    """Rename every constant global with a dense value to `mlc_const_<sha256 of its
    bytes>` (the whole digest, in hex; `constant_digest` reads it back; references
    follow); identical constants become one global."""
    renamed: dict[str, str] = {}
    kept: set[str] = set()
    for op in list(module.ops):
        if not isinstance(op, llvm.GlobalOp) or (raw := _raw_bytes(op)) is None:
            continue
        name = CONSTANT_PREFIX + hashlib.sha256(raw).hexdigest()
        renamed[op.sym_name.data] = name
        if name in kept:
            module.body.block.erase_op(op)
        else:
            kept.add(name)
            op.sym_name = StringAttr(name)
    if not renamed:
        return
    for op in module.walk():
        if isinstance(op, llvm.AddressOfOp):
            new = renamed.get(op.global_name.root_reference.data)
            if new is not None:
                op.global_name = SymbolRefAttr(new)


def constant_digest(name: str) -> bytes | None:
    """The SHA-256 of a content-addressed constant's bytes, from its name; None for
    another name."""
    if not name.startswith(CONSTANT_PREFIX):
        return None
    try:
        digest = bytes.fromhex(name[len(CONSTANT_PREFIX) :])
    except ValueError:
        return None
    return digest if len(digest) == hashlib.sha256().digest_size else None


def _signature(op: llvm.FuncOp) -> tuple[str, list[str], list[str]]:
    """The return type, the parameter types and the parameter attributes of `op`."""
    fty = op.function_type
    params = [type_text(t) for t in fty.inputs]
    attributes = [""] * len(params)
    if op.arg_attrs is not None:
        for k, attrs in enumerate(op.arg_attrs.data):
            for name, value in attrs.data.items():
                if name == "llvm.noalias" and isinstance(value, UnitAttr):
                    attributes[k] += " noalias"
                elif name == "llvm.align" and isinstance(value, IntegerAttr):
                    attributes[k] += f" align {value.value.data}"
    return type_text(fty.output), params, attributes


def _function(op: llvm.FuncOp, module: ModuleText) -> str:
    """The definition of `op` (a function with a body)."""
    f = FunctionText(module)
    ret, params, attributes = _signature(op)
    blocks = list(op.body.blocks)
    args = []
    for k, (arg, ty, attrs) in enumerate(zip(blocks[0].args, params, attributes)):
        f.names[arg] = f"%a{k}"
        args.append(f"{ty}{attrs} %a{k}")
    incoming: dict[Block, list[tuple[Block, Sequence[SSAValue]]]] = {}
    for block in blocks:
        last = block.last_op
        if isinstance(last, llvm.BrOp):
            incoming.setdefault(last.successor, []).append((block, last.arguments))
        elif isinstance(last, llvm.CondBrOp):
            incoming.setdefault(last.then_block, []).append((block, last.then_arguments))
            incoming.setdefault(last.else_block, []).append((block, last.else_arguments))
    lines = f.lines
    for block in blocks:
        lines.append(f"{f.block(block)}:")
        if block is not blocks[0]:
            for k, arg in enumerate(block.args):
                edges = ", ".join(
                    f"[ {f.ref(values[k])}, %{f.block(pred)} ]"
                    for pred, values in incoming.get(block, [])
                )
                f.assign(arg, f"phi {type_text(arg.type)} {edges}")
        for inner in block.ops:
            emitter = OP_EMITTERS.get(type(inner))
            if emitter is None:
                raise EmitError(f"{inner.name}: no LLVM IR emitter for this op")
            emitter(inner, f)
    header = f"define {ret} {_global_ref(op.sym_name.data)}({', '.join(args)})"
    return header + " {\n" + "\n".join(lines) + "\n}\n"


def emit_module(
    module: ModuleOp | Sequence[Operation],
    triple: str | None = None,
    data_layout: str = "",
    external_constants: dict[str, bytes] | None = None,
    declare: set[str] | frozenset[str] = frozenset(),
) -> str:
    """The LLVM IR text of a module (or a list) of `llvm.func` / `llvm.mlir.global` ops;
    with `external_constants`, large constants are declared and their bytes put there.
    The globals named in `declare` are not in `module` but defined elsewhere (another part
    of a split module): they are declared."""
    out = ModuleText()
    head = [
        f'target triple = "{triple or llvm_binding.get_default_triple()}"',
        *([f'target datalayout = "{data_layout}"'] if data_layout else []),
    ]
    # only addressed: the type does not matter (opaque pointers)
    head += [f"{_global_ref(name)} = external global i8" for name in sorted(declare)]
    funcs: list[llvm.FuncOp] = []
    for op in module.ops if isinstance(module, ModuleOp) else module:
        if isinstance(op, llvm.GlobalOp):
            raw = _raw_bytes(op) if external_constants is not None else None
            if raw is not None and len(raw) >= EXTERNAL_MIN_BYTES:
                assert external_constants is not None
                external_constants[op.sym_name.data] = raw
                name = _global_ref(op.sym_name.data)
                head.append(f"{name} = external constant [{len(raw)} x i8], align 64")
                continue
            head.append(_emit_global(op))
        elif isinstance(op, llvm.FuncOp):
            funcs.append(op)
        else:
            raise EmitError(f"{op.name} at module level: lower it to the llvm dialect first")
    for op in funcs:
        name = op.sym_name.data
        if op.body.blocks:
            out.defined.add(name)
        if op.function_type.is_variadic:
            ret, params, _ = _signature(op)
            out.variadic[name] = f"{ret} ({', '.join([*params, '...'])})"
    bodies = [_function(op, out) for op in funcs if op.body.blocks]
    for op in funcs:
        if not op.body.blocks:
            ret, params, attributes = _signature(op)
            args = [f"{ty}{attrs}" for ty, attrs in zip(params, attributes)]
            out.declare(op.sym_name.data, ret, args, op.function_type.is_variadic)
    return "\n".join([*head, *out.declarations.values(), *out.definitions.values(), *bodies, ""])
