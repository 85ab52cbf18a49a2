"""The tl dialect: docstring examples, printed/generic round trips, builders, the affine
index syntax, and the verifier's diagnostics (tests/filecheck/dialects/tl_invalid.mlir)."""

from __future__ import annotations

import re
import textwrap
from io import StringIO
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from xdsl.builder import Builder, InsertPoint
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import IndexType, MemRefType, ModuleOp, f32
from xdsl.ir import Block, Region
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.printer import Printer

from mlc.dialects.tl import (
    ALL_OPS,
    Access,
    BlockOp,
    ForOp,
    IndexOp,
    KernelOp,
    LoopKind,
    TlError,
    YieldOp,
    affine_range,
    build_kernel,
    build_loop_nest,
    format_affine_expr,
    parse_index_list,
)
from mlc.parser.mlir import IRDiagnostic, parse_module
from mlc.registry import make_context

ROOT = Path(__file__).resolve().parents[3]


def round_trip(text: str) -> ModuleOp:
    """Parse, print, re-parse (custom and generic syntax); the printed text is stable."""
    ctx = make_context()
    module = parse_module(ctx, text, "test")
    printed = str(module)
    assert str(parse_module(ctx, printed, "printed")) == printed
    out = StringIO()
    Printer(stream=out, print_generic_format=True).print_op(module)
    assert str(parse_module(ctx, out.getvalue(), "generic")) == printed
    return module


# --------------------------------------------------------------------------- docstrings

#: how each op's docstring example is placed in a module ({} is the example)
WRAPPERS = {
    "tl.kernel": "func.func @f(%A: memref<4x2xf32>, %B: memref<2x3xf32>, %C: memref<4x3xf32>) {{\n{}\n  func.return\n}}",
    "tl.block": "func.func @f(%X: memref<10xf32>, %Y: memref<10xf32>) {{\n"
    "  tl.for %mo = 0 to 3 {{\n    tl.for %mi = 0 to 4 {{\n{}\n    }}\n  }}\n  func.return\n}}",
    "tl.for": "func.func @f(%buf: memref<64xf32>, %v: f32) {{\n{}\n  func.return\n}}",
    "tl.index": "func.func @f(%X: memref<4xindex>) {{\n"
    '  tl.kernel "iota" iterators(k: 4 parallel) outs(%X[k] : memref<4xindex>) {{\n'
    "  ^bb0(%x: index):\n{}\n    tl.yield %i : index\n  }}\n  func.return\n}}",
    "tl.yield": "func.func @f(%X: memref<4xf32>) {{\n"
    '  tl.kernel "id" iterators(k: 4 parallel) outs(%X[k] : memref<4xf32>) {{\n'
    "  ^bb0(%s: f32):\n{}\n  }}\n  func.return\n}}",
    "tl.check": "func.func @f(%ok: i1) {{\n{}\n  func.return\n}}",
}


def docstring_example(op: type) -> str:
    doc = textwrap.dedent("\n".join((op.__doc__ or "").splitlines()[1:]))
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"(%\w+ = )?tl\.", line))
    example = [lines[start]]
    if lines[start].endswith("{"):
        for line in lines[start + 1 :]:
            example.append(line)
            if line == "}":
                break
    return "\n".join(example)


@pytest.mark.parametrize("op", ALL_OPS, ids=lambda op: op.name)
def test_docstring_example_round_trips(op: type) -> None:
    example = docstring_example(op)
    text = WRAPPERS[op.name].format(textwrap.indent(example, "    "))
    module = round_trip(text)
    printed = [line.strip() for line in str(module).splitlines()]
    wanted = [line.strip() for line in example.splitlines()]
    assert any(printed[i : i + len(wanted)] == wanted for i in range(len(printed))), (
        f"{op.name}: the docstring example is not in canonical printed form"
    )


# --------------------------------------------------------------------------- syntax

CONV = """
func.func @conv(%I: memref<1x3x8x8xf32>, %W: memref<4x3x3x3xf32>, %O: memref<1x4x4x4xf32>) {
  tl.kernel "conv" iterators(n: 1 parallel, f: 4 parallel, oh: 4 parallel, ow: 4 parallel, c: 3 reduction, kh: 3 reduction, kw: 3 reduction) ins(%I[n, c, oh * 2 + kh - 1, ow * 2 + kw - 1] pad 0.000000e+00 : memref<1x3x8x8xf32>, %W[f, c, kh, kw] : memref<4x3x3x3xf32>) outs(%O[n, f, oh, ow] init 0.000000e+00 : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %w: f32, %o: f32):
    %p = arith.mulf %x, %w : f32
    %s = arith.addf %o, %p : f32
    tl.yield %s : f32
  }
  func.return
}
"""


def test_conv_round_trips() -> None:
    module = round_trip(CONV)
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    assert kernel.reduction_dims == [4, 5, 6]
    assert kernel.pad_values[0] is not None and kernel.pad_values[1] is None
    assert "pad 0.000000e+00" in str(module)


def test_block_where_and_loop_kinds_round_trip() -> None:
    text = """
func.func @f(%X: memref<60xf32>, %Y: memref<60xf32>) {
  tl.for %mo = 0 to 8 parallel {
    tl.for %mi = 0 to 8 vectorize(8) {
      tl.block "copy" iterators(m: 60 parallel) at(m = %mo * 8 + %mi) where(m < 60) ins(%X[m] : memref<60xf32>) outs(%Y[m] : memref<60xf32>) {
      ^bb0(%x: f32, %y: f32):
        tl.yield %x : f32
      }
    }
  }
  tl.for %i = 0 to 60 vectorize(8, masked) {
  }
  tl.for %j = 0 to 60 step 3 unroll(4) {
  }
  func.return
}
"""
    module = round_trip(text)
    loops = [op for op in module.walk() if isinstance(op, ForOp)]
    assert [loop.loop_kind for loop in loops] == [
        LoopKind.PARALLEL,
        LoopKind.VECTORIZE,
        LoopKind.VECTORIZE,
        LoopKind.UNROLL,
    ]
    assert loops[2].masked is not None and loops[3].trip_count == 20
    block = next(op for op in module.walk() if isinstance(op, BlockOp))
    assert block.predicate_map is not None


def test_special_float_values_round_trip() -> None:
    text = """
func.func @f(%X: memref<4x6xf32>, %Y: memref<4xf32>) {
  tl.kernel "max" iterators(i: 4 parallel, j: 6 reduction) ins(%X[i, j - 1] pad 0xFF800000 : memref<4x6xf32>) outs(%Y[i] init 0xFF800000 : memref<4xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.maximumf %y, %x : f32
    tl.yield %m : f32
  }
  func.return
}
"""
    module = round_trip(text)
    kernel = next(op for op in module.walk() if isinstance(op, KernelOp))
    init = kernel.init_values[0]
    assert init is not None and init.value.data == float("-inf")


# --------------------------------------------------------------------------- affine syntax

NAMES = ["a", "b", "c"]


@st.composite
def affine_exprs(draw: st.DrawFn, depth: int = 3) -> AffineExpr:
    if depth == 0 or draw(st.booleans()):
        if draw(st.booleans()):
            return AffineExpr.dimension(draw(st.integers(0, 2)))
        return AffineExpr.constant(draw(st.integers(-5, 9)))
    lhs = draw(affine_exprs(depth - 1))
    kind = draw(st.sampled_from(["+", "-", "*", "floordiv", "ceildiv", "mod"]))
    if kind in ("+", "-"):
        rhs = draw(affine_exprs(depth - 1))
        return lhs + rhs if kind == "+" else lhs - rhs
    c = draw(st.integers(-4, 5) if kind == "*" else st.integers(1, 5))
    if kind == "*":
        return lhs * c
    if kind == "floordiv":
        return lhs // c
    if kind == "ceildiv":
        return lhs.ceil_div(c)
    return lhs % c


@given(affine_exprs(), st.lists(st.integers(-20, 20), min_size=3, max_size=3))
def test_affine_expressions_print_and_parse_back(expr: AffineExpr, point: list[int]) -> None:
    text = format_affine_expr(expr, NAMES)
    (parsed,) = parse_index_list(text, NAMES)
    assert parsed.eval(point, []) == expr.eval(point, [])
    assert format_affine_expr(parsed, NAMES) == text


@given(
    affine_exprs(),
    st.lists(st.tuples(st.integers(-6, 6), st.integers(0, 6)), min_size=3, max_size=3),
)
def test_affine_range_bounds_every_value(expr: AffineExpr, boxes: list[tuple[int, int]]) -> None:
    ranges = [(lo, lo + w) for lo, w in boxes]
    lo, hi = affine_range(expr, ranges)
    import itertools

    values = [
        expr.eval(list(p), []) for p in itertools.product(*(range(a, b + 1) for a, b in ranges))
    ]
    assert lo <= min(values) and max(values) <= hi


def test_affine_range_is_exact_for_linear_expressions() -> None:
    (expr,) = parse_index_list("a * 2 + b - c - 1", NAMES)
    assert affine_range(expr, [(0, 3), (0, 2), (0, 4)]) == (-5, 7)


def test_index_list_forms() -> None:
    assert format_affine_expr(parse_index_list("(a, b, c) -> (a, c)", NAMES)[1], NAMES) == "c"
    assert len(parse_index_list("[a, b * 2 + 1]", NAMES)) == 2
    assert parse_index_list("", NAMES) == []
    with pytest.raises(Exception, match="unknown iterator 'z'"):
        parse_index_list("z", NAMES)


# --------------------------------------------------------------------------- builders


def _function(*types: MemRefType) -> tuple[func.FuncOp, Builder]:
    f = func.FuncOp("f", (list(types), []))
    builder = Builder(InsertPoint.at_end(f.body.block))
    return f, builder


def test_build_kernel_matmul() -> None:
    f, b = _function(MemRefType(f32, [4, 2]), MemRefType(f32, [2, 3]), MemRefType(f32, [4, 3]))
    A, B, C = f.body.block.args

    def body(bb: Builder, args):
        p = bb.insert(arith.MulfOp(args[0], args[1])).result
        return bb.insert(arith.AddfOp(args[2], p)).result

    kernel = build_kernel(
        "matmul",
        [("m", 4, "parallel"), ("n", 3, "parallel"), ("k", 2, "reduction")],
        inputs=[(A, "m, k"), Access(B, "(m, n, k) -> (k, n)")],
        outputs=[(C, "m, n", 0.0)],
        body=body,
    )
    b.insert(kernel)
    b.insert(func.ReturnOp())
    module = ModuleOp([f])
    module.verify()
    printed = str(module)
    assert 'tl.kernel "matmul" iterators(m: 4 parallel, n: 3 parallel, k: 2 reduction)' in printed
    assert "outs(%2[m, n] init 0.000000e+00 : memref<4x3xf32>)" in printed
    round_trip(printed)


def test_build_loop_nest_and_block() -> None:
    f, b = _function(MemRefType(f32, [10]))
    (X,) = f.body.block.args
    loops, inner = build_loop_nest(b, [(0, 12, 4), 4])
    kernel = build_kernel(
        "neg",
        [("m", 10, "parallel")],
        inputs=[],
        outputs=[(X, "m")],
        body=lambda bb, args: bb.insert(arith.NegfOp(args[0])).result,
    )
    mo, mi = (loop.induction_var for loop in loops)
    d0, d1 = AffineExpr.dimension(0), AffineExpr.dimension(1)
    block = BlockOp.like(
        kernel, [mo, mi], AffineMap(2, 0, (d0 + d1,)), predicate=AffineMap(1, 0, (d0 - 10,))
    )
    inner.insert(block)
    b.insert(func.ReturnOp())
    module = ModuleOp([f])
    module.verify()
    assert "at(m = %1 + %2) where(m < 10)" in str(module)


def test_for_op_builder_checks_kind_properties() -> None:
    loop = ForOp(0, 16, 1, LoopKind.VECTORIZE, width=4)
    loop.verify()
    with pytest.raises(TlError, match="`width` is given exactly for vectorize loops"):
        ForOp(0, 16, 1, LoopKind.SERIAL, width=4).verify()
    with pytest.raises(TlError, match="only vectorize loops can be masked"):
        ForOp(0, 16, 1, LoopKind.UNROLL, factor=2, masked=True).verify()


def test_index_and_yield_ops() -> None:
    op = IndexOp("k")
    assert op.result.type == IndexType()
    assert YieldOp().arguments == ()
    block = Block(arg_types=[f32])
    block.add_op(YieldOp(block.args[0]))
    assert len(Region(block).block.ops) == 1


# --------------------------------------------------------------------------- diagnostics


def invalid_cases() -> list[tuple[str, str, int]]:
    """(source chunk, expected message, line offset) of tl_invalid.mlir."""
    path = ROOT / "tests" / "filecheck" / "dialects" / "tl_invalid.mlir"
    text = path.read_text()
    cases, offset = [], 0
    for chunk in text.split("// -----"):
        expected = re.findall(r"// expected-error(?:@\S+)? \{\{(.*)\}\}", chunk)
        if expected:
            cases.append((chunk, expected[0], offset))
        offset += chunk.count("\n")
    return cases


@pytest.mark.parametrize(
    "chunk,message,offset",
    invalid_cases(),
    ids=[re.search(r"func.func @(\w+)", c).group(1) for c, _, _ in invalid_cases()],  # type: ignore[union-attr]
)
def test_invalid_ir_is_diagnosed(chunk: str, message: str, offset: int) -> None:
    with pytest.raises(IRDiagnostic) as info:
        parse_module(make_context(), chunk, "tl_invalid.mlir", offset)
    assert message in str(info.value)
