"""`tl-concat-in-place`: concatenations without copies (shared prefixes of DenseNet-style
concat chains, producers writing into their slice), exact on the reference semantics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, note, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

import mlc
from mlc.benchmarks import blocks
from mlc.dialects.tl import KernelOp
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.testing.coverage import covers
from mlc.transforms.loops.concat_in_place import TlConcatInPlacePass, concat_in_place, copy_of


def _literal(a: np.ndarray) -> str:
    if a.ndim == 1:
        return "[" + ", ".join(f"{v:.3f}" for v in a) + "]"
    return "[" + ", ".join(_literal(row) for row in a) + "]"


@st.composite
def concat_chains(draw: st.DrawFn) -> tuple[str, list[np.ndarray], bool]:
    """A DenseNet-style block: `x`, then layers `f_i = relu(conv1x1(c_{i-1}))` and
    `c_i = concat(x, f_1, ..., f_i)` along `axis` (1: channels, or a spatial axis), with
    some features also returned on their own and the batch 1 or 2. Returns the IR, the
    input and whether the shared-prefix rewrite applies (batch 1, channel axis)."""
    n = draw(st.sampled_from([1, 1, 2]))
    c0, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    axis = draw(st.sampled_from([1, 1, 1, 2]))
    layers = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    lines: list[str] = []
    shapes: dict[str, list[int]] = {"%x": [n, c0, h, w]}

    def ty(name: str) -> str:
        return f"tensor<{'x'.join(map(str, shapes[name]))}xf32>"

    features = ["%x"]
    current = "%x"
    extra: list[str] = []
    for i in range(layers):
        growth = draw(st.integers(1, 3))
        cin = shapes[current][1]
        weight = rng.uniform(-1, 1, (growth, cin, 1, 1))
        shapes[f"%w{i}"] = [growth, cin, 1, 1]
        lines.append(f"  %w{i} = graph.constant dense<{_literal(weight)}> : {ty(f'%w{i}')}")
        out = [n, growth, *shapes[current][2:]]
        shapes[f"%v{i}"] = out
        lines.append(
            f"  %v{i} = graph.conv {current}, %w{i} {{strides = array<i64: 1, 1>, pads = "
            "array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : "
            f"({ty(current)}, {ty(f'%w{i}')}) -> {ty(f'%v{i}')}"
        )
        shapes[f"%f{i}"] = out
        lines.append(f"  %f{i} = graph.relu %v{i} : ({ty(f'%v{i}')}) -> {ty(f'%f{i}')}")
        features.append(f"%f{i}")
        if draw(st.booleans()) and draw(st.booleans()):
            extra.append(f"%f{i}")
        if axis == 1:
            parts = features
        else:  # a spatial concat: `x` repeated (the features have other channel counts)
            parts = ["%x"] * (i + 2)
        total = sum(shapes[p][axis] for p in parts)
        shape = list(shapes[parts[0]])
        shape[axis] = total
        shapes[f"%c{i}"] = shape
        operands = ", ".join(parts)
        types = ", ".join(ty(p) for p in parts)
        lines.append(
            f"  %c{i} = graph.concat {operands} {{axis = {axis} : i64}} : ({types}) -> "
            f"{ty(f'%c{i}')}"
        )
        current = f"%c{i}" if axis == 1 else current
    results = [f"%c{layers - 1}", *extra]
    signature = ", ".join(ty(r) for r in results)
    text = f"func.func @main(%x: {ty('%x')}) -> ({signature}) {{\n" + "\n".join(lines)
    text += f"\n  func.return {', '.join(results)} : {signature}\n}}\n"
    x = rng.uniform(-1, 1, (n, c0, h, w)).astype(np.float32)
    return text, [x], n == 1 and axis == 1 and layers > 1


def _at_tl(text: str) -> ModuleOp:
    module = parse_module(make_context(), text)
    ConvertGraphToTlPass().apply(make_context(), module)
    return module


def _copies(module: ModuleOp) -> int:
    return sum(1 for op in module.walk() if copy_of(op) is not None)


@covers("tl-concat-in-place")
@settings(max_examples=40)
@given(concat_chains())
def test_concat_in_place_preserves_semantics(case: tuple[str, list[np.ndarray], bool]) -> None:
    """The tl module interpreted before and after the rewrite gives bit-identical
    results; a channel concat chain at batch 1 always shares buffers and drops copies."""
    text, inputs, shares = case
    module = _at_tl(text)
    want = mlc.interpret(module, *inputs)
    before = _copies(module)
    via_pass = module.clone()
    merged, removed = concat_in_place(module)
    note(str(module))
    module.verify()
    TlConcatInPlacePass().apply(make_context(), via_pass)  # the registered class: the same
    assert str(via_pass) == str(module)
    got = mlc.interpret(module, *inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    if shares:
        assert merged >= 1 and _copies(module) < before


def test_a_dense_block_copies_only_its_input() -> None:
    """A DenseNet block at the tl level: every concatenation shares one buffer, each
    layer's producer writes its slice, and only the block input (a function argument) is
    still copied; compiled, it matches the reference interpreter."""
    case = blocks.dense_block(channels=16, size=8)
    module = mlc.import_onnx(case.model)
    ConvertGraphToTlPass().apply(make_context(), module)
    kernels = sum(1 for op in module.walk() if isinstance(op, KernelOp))
    assert _copies(module) == 14
    merged, removed = concat_in_place(module)
    assert (merged, removed) == (3, 4)
    assert _copies(module) == 1
    assert sum(1 for op in module.walk() if isinstance(op, KernelOp)) == kernels - 13
    (want,) = mlc.interpret(mlc.import_onnx(case.model), *case.inputs)
    (got,) = mlc.compile(case.model, cache=False)(*case.inputs)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


_WRITTEN_BETWEEN = """
func.func @main(%x: memref<1x2x2xf32>, %y: memref<1x2x2xf32>) -> memref<1x6x2xf32> {
  %a = memref.alloc() : memref<1x4x2xf32>
  tl.kernel "c0" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) ins(%x[i, j, k] : memref<1x2x2xf32>) outs(%a[i, j, k] : memref<1x4x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    tl.yield %v : f32
  }
  tl.kernel "c1" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) ins(%y[i, j, k] : memref<1x2x2xf32>) outs(%a[i, j + 2, k] : memref<1x4x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    tl.yield %v : f32
  }
  %s = memref.alloc() : memref<1x2x2xf32>
  tl.kernel "sum" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel, r: 4 reduction) ins(%a[i, r, k] : memref<1x4x2xf32>) outs(%s[i, j, k] init 0.000000e+00 : memref<1x2x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    %t = arith.addf %o, %v : f32
    tl.yield %t : f32
  }
  tl.kernel "bump" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) outs(%y[i, j, k] : memref<1x2x2xf32>) {
  ^bb0(%o: f32):
    %t = arith.addf %o, %o : f32
    tl.yield %t : f32
  }
  %b = memref.alloc() : memref<1x6x2xf32>
  tl.kernel "d0" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) ins(%x[i, j, k] : memref<1x2x2xf32>) outs(%b[i, j, k] : memref<1x6x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    tl.yield %v : f32
  }
  tl.kernel "d1" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) ins(%y[i, j, k] : memref<1x2x2xf32>) outs(%b[i, j + 2, k] : memref<1x6x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    tl.yield %v : f32
  }
  tl.kernel "d2" iterators(i: 1 parallel, j: 2 parallel, k: 2 parallel) ins(%s[i, j, k] : memref<1x2x2xf32>) outs(%b[i, j + 4, k] : memref<1x6x2xf32>) {
  ^bb0(%v: f32, %o: f32):
    tl.yield %v : f32
  }
  func.return %b : memref<1x6x2xf32>
}
"""


def test_a_source_written_between_the_copies_keeps_its_buffers_apart() -> None:
    """`%y` changes between the copies into `%a` and into `%b`: `%a` is not `%b`'s prefix
    (the sum reads the old `%y`), so nothing is shared; `%s` is still written in place."""
    module = parse_module(make_context(), _WRITTEN_BETWEEN)
    x = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    y = np.arange(4, 8, dtype=np.float32).reshape(1, 2, 2)
    want = mlc.interpret(module, x, y.copy())
    merged, removed = concat_in_place(module)
    assert (merged, removed) == (0, 1)
    np.testing.assert_array_equal(mlc.interpret(module, x, y.copy())[0], want[0])
