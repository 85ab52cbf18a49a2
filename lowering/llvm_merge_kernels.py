"""`llvm-merge-kernels`: outlined kernels that differ only in integer constants become one
kernel that takes those constants as arguments.

`tl-outline-kernels` shares kernels that are identical. Many are not, but nearly: a
DenseNet's dense layers each read a different number of channels, so their batch-norm,
1x1 convolution and concatenation-slice kernels differ in a loop's trip count, a stride or
an offset and nothing else (DenseNet-121: 264 kernels, 33 shapes of code). Each was
lowered, printed, optimized and compiled to machine code of its own. This pass, after
`convert-tl-to-llvm`, finds the kernel functions (with their parallel regions) whose
code is the same up to the values of `i64` constants, keeps one of them, turns the
constants that differ into `i64` arguments, and passes each call site its own values:

    llvm.func @mlc_kernel_a(%x: !llvm.ptr) { ... %n = llvm.mlir.constant(7 : i64) ... }
    llvm.func @mlc_kernel_b(%x: !llvm.ptr) { ... %n = llvm.mlir.constant(14 : i64) ... }
    llvm.call @mlc_kernel_a(%p) ; llvm.call @mlc_kernel_b(%q)
  ->
    llvm.func @mlc_kernel_a(%x: !llvm.ptr, %n: i64) { ... }
    llvm.call @mlc_kernel_a(%p, %c7) ; llvm.call @mlc_kernel_a(%q, %c14)

A parallel region's thread entry gets the values through extra slots of the context the
kernel passes to `GOMP_parallel` (`lowering.tl_parallel_to_llvm`), and passes them on to
its body as arguments. Every member computes what it computed before: each uses its own
values in the same code.

Constants stay constants where an argument would cost speed or is not allowed: a
divisor (a run-time division is ten times slower than the multiply-shift LLVM makes of a
constant one), an `alloca` size, an intrinsic's or an external function's argument, a
vector lane index. Kernels that differ in such a constant are not merged.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import llvm
from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IntegerAttr,
    ModuleOp,
    SymbolRefAttr,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.passes import ModulePass

from mlc.transforms.loops.outline import kernel_of

__all__ = ["LlvmMergeKernelsPass", "merge_kernels"]

#: ops any of whose operands may be a run-time value as well as a constant
_ANY_OPERAND = (
    llvm.AddOp, llvm.SubOp, llvm.MulOp, llvm.AndOp, llvm.OrOp, llvm.XOrOp, llvm.ShlOp,
    llvm.LShrOp, llvm.AShrOp, llvm.ICmpOp, llvm.SExtOp, llvm.ZExtOp, llvm.TruncOp, llvm.BrOp,
)  # fmt: skip
#: ops whose operand 0 may be a run-time value (a dividend, a stored value)
_FIRST_OPERAND = (llvm.SDivOp, llvm.UDivOp, llvm.SRemOp, llvm.URemOp, llvm.StoreOp)
#: ops whose operands after the first may be run-time values (select's values, GEP's
#: indices, a conditional branch's block arguments)
_LATER_OPERANDS = (llvm.SelectOp, llvm.GEPOp, llvm.CondBrOp)
_PTR = llvm.LLVMPointerType()
_EMPTY = DictionaryAttr({})


@dataclass(frozen=True)
class _Use:
    """Operand `index` of `op` (in function `function`) is the `i64` constant `value`. Uses,
    not constant ops, are compared: the lowering shares one constant op per value, so
    kernels whose values happen to coincide would otherwise differ in shape."""

    op: Operation
    index: int
    function: str
    value: int


@dataclass
class _Kernel:
    """A kernel function and its parallel regions (`<name>_par<i>`, `<name>_par<i>_body`)."""

    name: str
    functions: list[llvm.FuncOp]
    #: the code with `i64` constants left out: equal for kernels this pass may merge
    shape: Hashable = None
    #: every use of an `i64` constant, in the order of `shape`
    uses: tuple[_Use, ...] = ()

    def suffix(self, name: str) -> str:
        return name[len(self.name) :] if name.startswith(self.name) else name


def _kernels(module: ModuleOp) -> list[_Kernel]:
    funcs = [op for op in module.ops if isinstance(op, llvm.FuncOp) and op.body.blocks]
    roots = {
        f.sym_name.data: _Kernel(f.sym_name.data, [])
        for f in funcs
        if kernel_of(f.sym_name.data) == f.sym_name.data
    }
    for f in funcs:
        root = kernel_of(f.sym_name.data)
        if root in roots:
            roots[root].functions.append(f)
    for kernel in roots.values():
        kernel.functions.sort(key=lambda f: kernel.suffix(f.sym_name.data))
    return sorted((k for k in roots.values() if _well_formed(k)), key=lambda k: k.name)


def _well_formed(kernel: _Kernel) -> bool:
    """Whether `kernel` has the shape `convert-tl-to-llvm` gives kernels, which
    `_parametrize` relies on: each `GOMP_parallel` call of the kernel's function passes
    one of its thread entries and an `alloca` of a constant number of slots, and each
    thread entry (one `ptr` argument) calls its body once. Anything else (IR written by
    hand, say) is left as it is."""
    functions = {f.sym_name.data: f for f in kernel.functions}
    root = functions.get(kernel.name)
    if root is None:
        return False
    entries: list[str] = []
    for call in _calls(root, "GOMP_parallel"):
        if len(call.args) < 2:
            return False
        entry, ctx = call.args[0].owner, call.args[1].owner
        if not isinstance(entry, llvm.AddressOfOp) or not isinstance(ctx, llvm.AllocaOp):
            return False
        if _index_constant(ctx.size.owner) is None:
            return False
        entries.append(entry.global_name.root_reference.data)
    for name in entries:
        entry_fn, body = functions.get(name), name + "_body"
        if entry_fn is None or body not in functions or len(entry_fn.body.blocks[0].args) != 1:
            return False
        if len(_calls(entry_fn, body)) != 1:
            return False
    return len(entries) * 2 + 1 == len(kernel.functions)


def _calls(function: llvm.FuncOp, callee: str) -> list[llvm.CallOp]:
    """The calls of `callee` in `function`."""
    return [
        op
        for op in function.walk()
        if isinstance(op, llvm.CallOp)
        and op.callee is not None
        and op.callee.root_reference.data == callee
    ]


def _index_constant(op: Operation | Block) -> int | None:
    """The value of an `i64` `llvm.mlir.constant`; None for anything else."""
    if isinstance(op, llvm.ConstantOp) and op.result.type == i64:
        value = op.value
        if isinstance(value, IntegerAttr):
            return value.value.data
    return None


class _Interner:
    """Small integers for attributes: equal attributes get the same number, and each
    attribute object is hashed once (hashing xDSL attributes over and over was most of
    this pass's time)."""

    def __init__(self) -> None:
        self._by_object: dict[int, tuple[Attribute, int]] = {}  # the object kept alive
        self._by_value: dict[Hashable, int] = {}

    def __call__(self, attr: Hashable) -> int:
        known = self._by_object.get(id(attr))
        if known is not None:
            return known[1]
        number = self._by_value.setdefault(attr, len(self._by_value))
        self._by_object[id(attr)] = (attr, number)  # type: ignore[assignment]
        return number


def _fingerprint(kernel: _Kernel, intern: _Interner) -> None:
    """Set `kernel.shape` and `kernel.uses` (see `_Kernel`)."""
    ids: dict[SSAValue, int] = {}
    constants: dict[SSAValue, int] = {}  # index constants' results: numbered by use
    blocks: dict[Block, int] = {}
    for f in kernel.functions:  # number every value first: a use may precede its def
        for block in f.body.blocks:
            blocks[block] = len(blocks)
            for arg in block.args:
                ids[arg] = len(ids)
            for op in block.ops:
                value = _index_constant(op)
                if value is not None:
                    constants[op.results[0]] = value
                    continue
                for result in op.results:
                    ids[result] = len(ids)
    items: list[Hashable] = []
    uses: list[_Use] = []
    for f in kernel.functions:
        name = f.sym_name.data
        items.append((kernel.suffix(name), intern(f.function_type), intern(f.arg_attrs)))
        for block in f.body.blocks:
            items.append(tuple(intern(a.type) for a in block.args))
            for op in block.ops:
                if op.results and op.results[0] in constants:
                    continue
                operands: list[int] = []
                for index, v in enumerate(op.operands):
                    value = constants.get(v)
                    if value is None:
                        operands.append(ids[v])
                    else:
                        operands.append(-1)
                        uses.append(_Use(op, index, name, value))
                items.append(
                    (
                        op.name,
                        tuple(operands),
                        tuple(intern(r.type) for r in op.results),
                        tuple(blocks[s] for s in op.successors),
                        _attributes(op, kernel, intern),
                        bool(op.regions),
                    )
                )
    kernel.shape = tuple(items)
    kernel.uses = tuple(uses)


def _attributes(op: Operation, kernel: _Kernel, intern: _Interner) -> tuple[Hashable, ...]:
    """`op`'s properties and attributes (interned, in the op's order: ops built alike list
    them alike); references to the kernel's own functions by their suffix (kernels differ
    in name only)."""
    out: list[Hashable] = []
    for attrs in (op.properties, op.attributes):
        for name, attr in attrs.items():
            if isinstance(attr, SymbolRefAttr):
                out.append((name, kernel.suffix(attr.root_reference.data)))
            else:
                out.append((name, intern(attr)))
    return tuple(out)


def _may_be_argument(use: _Use, kernel: _Kernel) -> bool:
    """Whether `use` takes a run-time value as well as a constant (module docstring)."""
    op, index = use.op, use.index
    if isinstance(op, _ANY_OPERAND):
        return True
    if isinstance(op, _FIRST_OPERAND):
        return index == 0
    if isinstance(op, _LATER_OPERANDS):
        return index > 0
    if isinstance(op, llvm.CallOp) and op.callee is not None:
        return any(op.callee.root_reference.data == f.sym_name.data for f in kernel.functions)
    return False


@dataclass
class _Merge:
    """Kernels to merge (the first is kept), the positions (in `_Kernel.uses`) of the
    constants that become its arguments, and those computed from an argument: position ->
    (argument index, scale, offset), the constant being `scale * argument + offset` in
    every member (`_relate`)."""

    members: list[_Kernel]
    arguments: list[int]
    derived: dict[int, tuple[int, int, int]]

    def values(self, member: _Kernel) -> list[int]:
        """The arguments a call of `member` passes."""
        return [member.uses[i].value for i in self.arguments]


def _merges(kernels: Sequence[_Kernel]) -> list[_Merge]:
    """The kernels to merge, grouped (`_Merge`)."""
    by_shape: dict[Hashable, list[_Kernel]] = defaultdict(list)
    for kernel in kernels:
        by_shape[kernel.shape].append(kernel)
    merges: list[_Merge] = []
    for members in by_shape.values():
        if len(members) < 2:
            continue
        first = members[0]
        differing = [
            i for i in range(len(first.uses)) if len({m.uses[i].value for m in members}) > 1
        ]
        fixed = [i for i in differing if not _may_be_argument(first.uses[i], first)]
        fixed += _strides_in_registers(first, [i for i in differing if i not in fixed])
        varying = [i for i in differing if i not in fixed]
        split: dict[tuple[int, ...], list[_Kernel]] = defaultdict(list)
        for m in members:
            split[tuple(m.uses[i].value for i in fixed)].append(m)
        for part in split.values():
            if len(part) > 1:
                merges.extend(_relate(part, varying))
    return merges


#: at most this many multiplications by a run-time value in one block (see below)
MAX_RUNTIME_PRODUCTS_PER_BLOCK = 4


def _strides_in_registers(kernel: _Kernel, positions: list[int]) -> list[int]:
    """The positions among `positions` that must stay constants because their block
    multiplies by too many of them: a multiple of a constant stride folds into an
    address's displacement, a multiple of a run-time one is a value in a register. An
    unrolled register tile multiplies a row stride by each of its rows; with those in
    registers the tile's addresses spill. Measured: BERT's 3072 x 768 and 768 x 3072
    products merged (17 in one block) ran 3x slower, DenseNet's 1x1 convolutions of two
    resolutions merged (6 in one block) 2x; at most 4, DenseNet-121 runs at 0.98-1.00x of
    its unmerged time with 50 kernels instead of 264."""
    by_block: dict[Block | None, list[int]] = defaultdict(list)
    for i in positions:
        op = kernel.uses[i].op
        if isinstance(op, llvm.MulOp):
            by_block[op.parent_block()].append(i)
    return [
        i
        for found in by_block.values()
        if len(found) > MAX_RUNTIME_PRODUCTS_PER_BLOCK
        for i in found
    ]


def _relate(members: list[_Kernel], positions: list[int]) -> list[_Merge]:
    """The merges of `members` at the constant `positions`: a constant that is an affine
    function of an argument's in every member is computed from it, the rest become
    arguments. Address offsets are kept a constant apart: the first offset that varies is
    the base, and the others must differ from it by the same amount in every member (else
    the members are split by that amount): two independent run-time offsets into one
    buffer could be equal as far as LLVM knows, so a store through one would force reloads
    through the other (a DenseNet 3x3 convolution writing its concatenation slice: its
    register tile in memory, 3.8x slower)."""
    merge = _Merge(members, [], {})
    columns: list[list[int]] = []  # each argument's value per member
    base: tuple[list[int], tuple[int, int, int]] | None = None  # the base offset
    for i in positions:
        column = [m.uses[i].value for m in members]
        if len(set(column)) == 1:
            continue
        offset = _is_address_offset(members[0].uses[i])
        if offset and base is not None:
            base_column, (k, scale, shift) = base
            apart = [v - b for v, b in zip(column, base_column)]
            if len(set(apart)) > 1:
                parts: dict[int, list[_Kernel]] = defaultdict(list)
                for m, d in zip(members, apart):
                    parts[d].append(m)
                return [
                    merge
                    for part in parts.values()
                    if len(part) > 1
                    for merge in _relate(part, positions)
                ]
            merge.derived[i] = (k, scale, shift + apart[0])
            continue
        relation = next(
            (
                (k, *fit)
                for k, known in enumerate(columns)
                if (fit := _affine(known, column)) is not None
            ),
            None,
        )
        if relation is None:
            relation = (len(columns), 1, 0)
            merge.arguments.append(i)
            columns.append(column)
        else:
            merge.derived[i] = relation
        if offset:
            base = (column, relation)
    return [merge]


def _is_address_offset(use: _Use) -> bool:
    """Whether `use` is an operand of an addition whose result becomes an address (a
    `getelementptr` index, through at most two more additions or multiplications)."""
    if not isinstance(use.op, llvm.AddOp):
        return False
    frontier: list[Operation] = [use.op]
    for _ in range(3):
        following: list[Operation] = []
        for op in frontier:
            for result in op.results:
                for u in result.uses:
                    if isinstance(u.operation, llvm.GEPOp):
                        return True
                    if isinstance(u.operation, llvm.AddOp | llvm.MulOp):
                        following.append(u.operation)
        frontier = following
    return False


def _affine(xs: list[int], ys: list[int]) -> tuple[int, int] | None:
    """(scale, offset) with `y = scale * x + offset` for every pair, integers; else None."""
    (x0, y0), (x1, y1) = (
        (xs[0], ys[0]),
        next(((x, y) for x, y in zip(xs, ys) if x != xs[0]), (xs[0], ys[0])),
    )
    if x1 == x0 or (y1 - y0) % (x1 - x0):
        return None
    scale = (y1 - y0) // (x1 - x0)
    offset = y0 - scale * x0
    return (scale, offset) if all(y == scale * x + offset for x, y in zip(xs, ys)) else None


def _append_args(f: llvm.FuncOp, count: int) -> list[SSAValue]:
    """`count` new `i64` arguments at the end of `f`'s."""
    entry = f.body.blocks[0]
    args = [entry.insert_arg(i64, len(entry.args)) for _ in range(count)]
    fty = f.function_type
    f.function_type = llvm.LLVMFunctionType([*fty.inputs, *([i64] * count)], fty.output)
    if f.arg_attrs is not None:
        f.arg_attrs = ArrayAttr([*f.arg_attrs.data, *([_EMPTY] * count)])
    return args


def _parametrize(merge: _Merge) -> None:
    """Make the kept kernel's constants at `merge.arguments` arguments of each of its
    functions (its own at the end of its arguments; each thread entry loads them from
    context slots after the captured values' and passes them on to its body) and compute
    those at `merge.derived` from them."""
    kernel = merge.members[0]
    count = len(merge.arguments)
    functions = {f.sym_name.data: f for f in kernel.functions}
    # where each function computes derived values: its entry's first op (after the loads)
    anchors = {name: f.body.blocks[0].first_op for name, f in functions.items()}
    root = functions[kernel.name]
    values: dict[str, list[SSAValue]] = {kernel.name: _append_args(root, count)}
    body_calls: list[tuple[llvm.CallOp, str, str]] = []
    for call in _calls(root, "GOMP_parallel"):  # `_well_formed`: each as asserted
        entry_ref, ctx = call.args[0].owner, call.args[1].owner
        assert isinstance(entry_ref, llvm.AddressOfOp) and isinstance(ctx, llvm.AllocaOp)
        entry = entry_ref.global_name.root_reference.data
        base = _index_constant(ctx.size.owner)
        assert base is not None
        for slot, value in zip(_context_slots(ctx, base, count, call), values[kernel.name]):
            call.parent_block().insert_op_before(llvm.StoreOp(value, slot, alignment=8), call)  # type: ignore[union-attr]
        values[entry] = _load_slots(functions[entry], base, count)
        body = entry + "_body"
        (body_call,) = _calls(functions[entry], body)
        body_calls.append((body_call, body, entry))
        values[body] = _append_args(functions[body], count)
    computed: dict[tuple[str, int, int, int], SSAValue] = {}
    replaced: set[Operation] = set()  # constants that lost uses
    replacements = {i: (k, 1, 0) for k, i in enumerate(merge.arguments)} | merge.derived
    for position, (k, scale, offset) in replacements.items():
        use = kernel.uses[position]
        key = (use.function, k, scale, offset)
        if key not in computed:
            computed[key] = _affine_value(
                values[use.function][k], scale, offset, anchors[use.function]
            )
        operands = list(use.op.operands)
        replaced.add(operands[use.index].owner)  # type: ignore[arg-type]
        operands[use.index] = computed[key]
        use.op.operands = operands
    for call, body, entry in body_calls:  # after the uses: they may be this call's operands
        _replace_call(call, body, [*call.args, *values[entry]])
    for constant in replaced:
        if not constant.results[0].uses:
            constant.detach()
            constant.erase()


def _affine_value(x: SSAValue, scale: int, offset: int, before: Operation | None) -> SSAValue:
    """`scale * x + offset`, built before `before`."""
    assert before is not None
    block = before.parent_block()
    assert block is not None
    for factor, neutral, arith in ((scale, 1, llvm.MulOp), (offset, 0, llvm.AddOp)):
        if factor != neutral:
            c = llvm.ConstantOp(IntegerAttr(factor, i64), i64)
            op = arith(x, c.result)
            block.insert_ops_before([c, op], before)
            x = op.res
    return x


def _context_slots(ctx: llvm.AllocaOp, base: int, count: int, before: Operation) -> list[SSAValue]:
    """Grow the context `ctx` of `base` slots by `count`; their addresses (built before
    `before`)."""
    block = ctx.parent_block()
    assert block is not None
    size = llvm.ConstantOp(IntegerAttr(base + count, ctx.size.type), ctx.size.type)
    block.insert_op_before(size, ctx)
    ctx.operands = [size.result]
    slots: list[SSAValue] = []
    for i in range(count):
        gep = llvm.GEPOp(ctx.res, [base + i], _PTR, inbounds=True)
        before.parent_block().insert_op_before(gep, before)  # type: ignore[union-attr]
        slots.append(gep.result)
    return slots


def _load_slots(entry: llvm.FuncOp, base: int, count: int) -> list[SSAValue]:
    """In the thread entry `entry`: the `count` values after the context's first `base`
    slots."""
    block = entry.body.blocks[0]
    ctx = block.args[0]
    first = block.first_op
    assert first is not None
    loaded: list[SSAValue] = []
    for i in range(count):
        gep = llvm.GEPOp(ctx, [base + i], _PTR, inbounds=True)
        load = llvm.LoadOp(gep, i64, alignment=8)
        block.insert_ops_before([gep, load], first)
        loaded.append(load.dereferenced_value)
    return loaded


def _replace_call(call: llvm.CallOp, callee: str, args: Sequence[SSAValue]) -> llvm.CallOp:
    """`call` with `args`, calling `callee` (its attributes and conventions kept)."""
    new = llvm.CallOp(
        callee,
        *args,
        return_type=call.returned.type if call.returned is not None else None,
        calling_convention=call.CConv,
        fastmath=call.fastmathFlags,
    )
    new.attributes.update(call.attributes)
    block = call.parent_block()
    assert block is not None
    block.insert_op_before(new, call)
    if call.returned is not None and new.returned is not None:
        call.returned.replace_all_uses_with(new.returned)
    call.detach()
    call.erase()
    return new


def merge_kernels(module: ModuleOp) -> dict[str, str]:
    """Merge (see the module docstring); returns each merged-away kernel's replacement."""
    kernels = _kernels(module)
    intern = _Interner()
    for kernel in kernels:
        _fingerprint(kernel, intern)
    replaced: dict[str, str] = {}
    site_values: dict[str, list[int]] = {}
    for merge in _merges(kernels):
        kept = merge.members[0]
        for m in merge.members:
            replaced[m.name] = kept.name
            site_values[m.name] = merge.values(m)
        _parametrize(merge)
        for m in merge.members[1:]:
            for f in m.functions:
                module.body.block.detach_op(f)
    if not replaced:
        return {}
    for call in [op for op in module.walk() if isinstance(op, llvm.CallOp)]:
        name = call.callee.root_reference.data if call.callee is not None else None
        if name not in replaced:
            continue
        block = call.parent_block()
        assert block is not None
        extra: list[SSAValue] = []
        for v in site_values[name]:
            c = llvm.ConstantOp(IntegerAttr(v, i64), i64)
            block.insert_op_before(c, call)
            extra.append(c.result)
        _replace_call(call, replaced[name], [*call.args, *extra])
    return {k: v for k, v in replaced.items() if k != v}


@dataclass(frozen=True)
class LlvmMergeKernelsPass(ModulePass):
    """`llvm-merge-kernels`: kernels equal up to `i64` constants share one function."""

    name = "llvm-merge-kernels"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        merge_kernels(op)
