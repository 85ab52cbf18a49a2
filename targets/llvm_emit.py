"""xDSL `llvm` dialect -> llvmlite IR.

Per op, xDSL's converter (`xdsl.backend.llvm.convert_op.convert_op`, its public function)
does the work; this module drives it and does what it lacks or gets wrong for us:

- globals: dense initializers are emitted from their raw little-endian bytes as one
  `[n x i8]` constant (xDSL builds one llvmlite constant per element: slow for weights);
  splats are expanded; globals without a value are zero-initialized, never external.
  With `external_constants` (the JIT), constants of `EXTERNAL_MIN_BYTES` or more are only
  declared and their bytes collected instead: the JIT binds the symbols to memory it
  holds, so a model's weights never go through LLVM IR text (about 10 s of printing and
  parsing for a ResNet-50's 100 MB). `content_address_constants` names them by content
  first, so that a symbol always means the same bytes in a process;
- function declarations: `llvm.noalias` / `llvm.align` argument attributes, external
  C functions (`aligned_alloc`, `free`) declared once;
- blocks: one llvmlite block per dialect block, block arguments as phis (filled by the
  branches xDSL converts);
- libm calls: `llvm.call_intrinsic "llvm.mlc.libm.<fn>"` (math functions LLVM has no
  intrinsic for, see `lowering.arith_to_llvm._libm`) calls `<fn>f` / `<fn>`, declared
  once, per lane for vector operands; `llvm.call_intrinsic "llvm.mlc.vecmath.<symbol>"`
  (`lowering.llvm_vector_math`) calls the whole-vector function `<symbol>` (defined in
  the module when it is one of `targets.inline_math`'s);
- `llvmx.fcmp` (vector lanes) and `llvmx.extractelement`, which xDSL's llvm dialect
  lacks; masked loads / stores are `llvm.call_intrinsic` of `llvm.masked.*`;
- types: `f16` is LLVM `half`; `bf16` never reaches here (llvmlite has no `bfloat`): the
  LLVM lowering keeps it as `i16` bits and converts with integer ops.

Not emitted: loop metadata and fast-math flags on intrinsic calls (the lowering sets no
flags that would need them: `contract` only, on fadd / fsub / fmul).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from llvmlite import binding as llvm_binding
from llvmlite import ir
from xdsl.backend.llvm.convert_op import convert_op
from xdsl.backend.llvm.convert_type import convert_type
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    SymbolRefAttr,
    UnitAttr,
)
from xdsl.ir import Block, Operation, SSAValue

from mlc.dialects import llvmx
from mlc.lowering.arith_to_llvm import LIBM_PREFIX
from mlc.lowering.llvm_vector_math import PREFIX as VECMATH_PREFIX
from mlc.targets.inline_math import define_inline, is_inline

__all__ = [
    "CONSTANT_PREFIX",
    "EXTERNAL_MIN_BYTES",
    "EmitError",
    "OWN_OP_EMITTERS",
    "constant_digest",
    "content_address_constants",
    "emit_module",
]


class EmitError(Exception):
    """An llvm-dialect construct the emitter cannot translate."""


OpEmitter = Callable[[Operation, ir.IRBuilder, dict[SSAValue, ir.Value]], None]
#: ops this module emits itself instead of delegating to xDSL's converter
OWN_OP_EMITTERS: dict[type[Operation], OpEmitter] = {}


def _emit_global(op: llvm.GlobalOp, module: ir.Module) -> None:
    ty = convert_type(op.global_type)
    value = op.value
    if isinstance(value, DenseIntOrFPElementsAttr):
        raw = _dense_bytes(op)
        size = _type_size(ty)
        if raw is None:
            raise EmitError(
                f"@{op.sym_name.data}: initializer has {len(value.data.data)} bytes, the "
                f"global {size}"
            )
        ty = ir.ArrayType(ir.IntType(8), size)
        init = ir.Constant(ty, bytearray(raw))
    elif value is None:
        init = ir.Constant(ty, None)
    else:
        raise EmitError(f"@{op.sym_name.data}: unsupported initializer {value}")
    gvar = ir.GlobalVariable(module, ty, name=op.sym_name.data)
    linkage = op.linkage.linkage.data
    gvar.linkage = "" if linkage == "external" else linkage  # a definition: default linkage
    gvar.global_constant = op.constant is not None
    gvar.initializer = init
    if op.alignment is not None:
        gvar.align = op.alignment.value.data


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


def _declare(op: llvm.FuncOp, module: ir.Module) -> ir.Function:
    fty = op.function_type
    ret = convert_type(fty.output)
    fn = ir.Function(
        module,
        ir.FunctionType(ret, [convert_type(t) for t in fty.inputs], var_arg=fty.is_variadic),
        name=op.sym_name.data,
    )
    if op.arg_attrs is not None:
        for arg, attrs in zip(fn.args, op.arg_attrs.data):
            for name, value in attrs.data.items():
                if name == "llvm.noalias" and isinstance(value, UnitAttr):
                    arg.add_attribute("noalias")
                elif name == "llvm.align" and isinstance(value, IntegerAttr):
                    arg.attributes.align = value.value.data
    return fn


def _emit_body(op: llvm.FuncOp, fn: ir.Function) -> None:
    blocks: dict[Block, ir.Block] = {}
    values: dict[SSAValue, ir.Value] = {}
    body = list(op.body.blocks)
    for block in body:
        blocks[block] = fn.append_basic_block()
    for arg, llarg in zip(body[0].args, fn.args):
        values[arg] = llarg
    for block in body[1:]:
        builder = ir.IRBuilder(blocks[block])
        for arg in block.args:
            values[arg] = builder.phi(convert_type(arg.type))
    for block in body:
        builder = ir.IRBuilder(blocks[block])
        for inner in block.ops:
            own = OWN_OP_EMITTERS.get(type(inner))
            try:
                if own is not None:
                    own(inner, builder, values)
                else:
                    convert_op(inner, builder, values, blocks)
            except NotImplementedError as e:
                raise EmitError(f"{inner.name}: {e}") from e


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


def emit_module(
    module: ModuleOp | Sequence[Operation],
    triple: str | None = None,
    data_layout: str = "",
    external_constants: dict[str, bytes] | None = None,
    declare: set[str] | frozenset[str] = frozenset(),
) -> ir.Module:
    """The llvmlite module for a module (or a list) of `llvm.func` / `llvm.mlir.global` ops; with
    `external_constants`, large constants are declared and their bytes put there. The
    globals named in `declare` are not in `module` but defined elsewhere (another part of
    a split module): they are declared."""
    out = ir.Module()
    for name in sorted(declare):  # only addressed: the type does not matter (opaque ptr)
        ir.GlobalVariable(out, ir.IntType(8), name)
    out.triple = triple or llvm_binding.get_default_triple()
    if data_layout:
        out.data_layout = data_layout
    funcs: list[llvm.FuncOp] = []
    for op in module.ops if isinstance(module, ModuleOp) else module:
        if isinstance(op, llvm.GlobalOp):
            raw = _raw_bytes(op) if external_constants is not None else None
            if raw is not None and len(raw) >= EXTERNAL_MIN_BYTES:
                assert external_constants is not None
                external_constants[op.sym_name.data] = raw
                gvar = ir.GlobalVariable(
                    out, ir.ArrayType(ir.IntType(8), len(raw)), op.sym_name.data
                )
                gvar.global_constant = True
                gvar.align = 64
                continue
            _emit_global(op, out)
        elif isinstance(op, llvm.FuncOp):
            funcs.append(op)
        else:
            raise EmitError(f"{op.name} at module level: lower it to the llvm dialect first")
    declared = [(f, _declare(f, out)) for f in funcs]
    for f, fn in declared:
        if f.body.blocks:
            _emit_body(f, fn)
    return out


def _libm_function(module: ir.Module, name: str, element: ir.Type, arity: int) -> ir.Function:
    """The declaration of libm's `name` (`namef` for float), added once."""
    if isinstance(element, ir.FloatType):
        name += "f"
    elif not isinstance(element, ir.DoubleType):
        raise EmitError(f"libm function {name}: element type {element} is not supported")
    if name in module.globals:
        fn = module.globals[name]
        assert isinstance(fn, ir.Function)
        return fn
    return ir.Function(module, ir.FunctionType(element, [element] * arity), name=name)


def _emit_call_intrinsic(
    op: Operation, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]
) -> None:
    """`llvm.call_intrinsic "llvm.mlc.libm.<fn>"` (see `lowering.arith_to_llvm._libm`): a
    libm call per lane; `"llvm.mlc.vecmath.<symbol>"` (`lowering.llvm_vector_math`): one call of
    the vector function; other intrinsics go to xDSL's converter."""
    assert isinstance(op, llvm.CallIntrinsicOp)
    name = op.intrin.data
    if name.startswith(VECMATH_PREFIX):  # one call of a whole-vector function
        args = [values[a] for a in op.args]
        assert op.ress is not None
        ty = convert_type(op.ress.type)
        symbol = name[len(VECMATH_PREFIX) :]
        fn = builder.module.globals.get(symbol)
        if fn is None and is_inline(symbol):
            fn = define_inline(builder.module, symbol)
        elif fn is None:
            fn = ir.Function(builder.module, ir.FunctionType(ty, [a.type for a in args]), symbol)
        values[op.ress] = builder.call(fn, args)
        return
    if not name.startswith(LIBM_PREFIX):
        convert_op(op, builder, values)
        return
    if op.ress is None:
        raise EmitError(f"{name} must have a result")
    args = [values[a] for a in op.args]
    ty = convert_type(op.ress.type)
    if not isinstance(ty, ir.VectorType):
        fn = _libm_function(builder.module, name[len(LIBM_PREFIX) :], ty, len(args))
        values[op.ress] = builder.call(fn, args)
        return
    fn = _libm_function(builder.module, name[len(LIBM_PREFIX) :], ty.element, len(args))
    result: ir.Value = ir.Constant(ty, ir.Undefined)
    for lane in range(ty.count):
        index = ir.Constant(ir.IntType(32), lane)
        lane_value = builder.call(fn, [builder.extract_element(a, index) for a in args])
        result = builder.insert_element(result, lane_value, index)
    values[op.ress] = result


OWN_OP_EMITTERS[llvm.CallIntrinsicOp] = _emit_call_intrinsic


def _emit_fcmp(op: Operation, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]) -> None:
    """`llvmx.fcmp` (scalars or vectors): ordered / unordered compare by predicate name."""
    assert isinstance(op, llvmx.FCmpOp)
    pred = op.predicate.data
    lhs, rhs = values[op.lhs], values[op.rhs]
    if pred in ("ord", "uno"):
        compare = builder.fcmp_ordered if pred == "ord" else builder.fcmp_unordered
        values[op.res] = compare(pred, lhs, rhs)
        return
    symbol = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[pred[1:]]
    compare = builder.fcmp_ordered if pred[0] == "o" else builder.fcmp_unordered
    values[op.res] = compare(symbol, lhs, rhs)


def _emit_extractelement(
    op: Operation, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]
) -> None:
    assert isinstance(op, llvmx.ExtractElementOp)
    values[op.res] = builder.extract_element(values[op.vector], values[op.index])


def _emit_fptosi(op: Operation, builder: ir.IRBuilder, values: dict[SSAValue, ir.Value]) -> None:
    assert isinstance(op, llvmx.FPToSIOp)
    values[op.res] = builder.fptosi(values[op.input], convert_type(op.res.type))


OWN_OP_EMITTERS[llvmx.FCmpOp] = _emit_fcmp
OWN_OP_EMITTERS[llvmx.FPToSIOp] = _emit_fptosi
OWN_OP_EMITTERS[llvmx.ExtractElementOp] = _emit_extractelement
