"""`lowering/llvm_builder.py`: the builder the parts of `convert-tl-to-llvm` share, and
the one-way direction of those parts (each depends on the builder, none on `tl_to_llvm`)."""

from __future__ import annotations

import ast
from pathlib import Path

from xdsl.dialects import llvm
from xdsl.dialects.builtin import MemRefType, ModuleOp, f32, i64
from xdsl.ir import Attribute, Block, Region, SSAValue

from mlc.lowering.llvm_builder import PTR, FunctionBuilder, row_major_strides

LOWERING = Path(__file__).resolve().parents[3] / "lowering"
PARTS = ["tl_vector_to_llvm", "tl_parallel_to_llvm", "tl_check_to_llvm", "hw_x86_to_llvm"]


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (functions, `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_parts_depend_on_the_builder_not_on_the_composition() -> None:
    for part in PARTS:
        imports = _imports(LOWERING / f"{part}.py")
        assert "mlc.lowering.llvm_builder" in imports, part
        assert "mlc.lowering.tl_to_llvm" not in imports, part
        assert not {f"mlc.lowering.{p}" for p in PARTS} & imports, part
    assert not _imports(LOWERING / "llvm_builder.py") & {
        f"mlc.lowering.{p}" for p in [*PARTS, "tl_to_llvm"]
    }


def _function(arg_types: list[Attribute]) -> tuple[FunctionBuilder, Block]:
    entry = Block(arg_types=arg_types)
    region = Region()
    region.add_block(entry)
    return FunctionBuilder(region, entry, set()), entry


def _text(fb: FunctionBuilder) -> str:
    fb.insert(llvm.ReturnOp())
    types = [a.type for a in fb.region.blocks[0].args]
    fn = llvm.FuncOp("f", llvm.LLVMFunctionType(types), body=fb.region)
    return str(ModuleOp([fn]))


def test_the_docstring_example() -> None:
    fb, entry = _function([PTR, PTR, i64])
    buf, out, i = entry.args
    ptr = fb.element_ptr(buf, MemRefType(f32, [4, 8]), [i, 3])
    fb.store(fb.load(ptr, f32), out, f32)
    body = [line.strip() for line in _text(fb).splitlines()[2:-3]]
    assert body == [
        "%3 = llvm.mlir.constant(3) : i64",
        "%4 = llvm.mlir.constant(8) : i64",
        "%5 = llvm.mul %2, %4 : i64",
        "%6 = llvm.add %5, %3 : i64",
        "%7 = llvm.getelementptr inbounds %0[%6] : (!llvm.ptr, i64) -> !llvm.ptr, f32",
        "%8 = llvm.load %7 : !llvm.ptr -> f32",
        "llvm.store %8, %1 : f32, !llvm.ptr",
    ]


def test_index_arithmetic_folds_ints() -> None:
    fb, entry = _function([i64])
    (x,) = entry.args
    assert fb.add(2, 3) == 5 and fb.mul(4, 5) == 20
    assert fb.add(x, 0) is x and fb.mul(1, x) is x and fb.mul(x, 0) == 0
    assert fb.v(7) is fb.v(7)  # one constant per value
    assert fb.flat_offset(MemRefType(f32, [2, 3, 4]), [1, 2, 3]) == 12 + 8 + 3
    assert row_major_strides([2, 3, 4]) == [12, 4, 1]


def test_loop_carries_values_and_moves_the_insertion_point() -> None:
    fb, entry = _function([i64])
    (n,) = entry.args
    seen: list[SSAValue] = []

    def step(iv: SSAValue, carried: list[SSAValue]) -> list[SSAValue]:
        seen.append(iv)
        return [fb.insert(llvm.AddOp(carried[0], iv)).results[0]]

    (total,) = fb.loop(0, n, 1, step, [fb.v(0)])
    _, header, body, exit_block = fb.region.blocks
    assert fb.block is exit_block and seen == [header.args[0]] and total is header.args[1]
    assert isinstance(body.last_op, llvm.BrOp) and body.last_op.successor is header


def test_new_function_restores_the_outer_state() -> None:
    fb, entry = _function([i64])
    outer_values = fb.values
    key = entry.args[0]
    fb.values[key] = 1
    with fb.new_function([PTR]) as region:
        assert fb.region is region and fb.block is region.blocks[0]
        assert fb.values[key] == 1  # the outer mapping is visible inside
        fb.values[key] = 2
    assert fb.values is outer_values and fb.values[key] == 1
    assert fb.region.blocks[0] is entry and fb.block is entry
