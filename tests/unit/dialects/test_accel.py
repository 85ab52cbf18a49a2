"""The simulated accelerator: the `hw.accel` ISA, its simulator, the GEMM intrinsic, the
lowering of matmuls and conv layers, and `accel-placement`."""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.dialects.builtin import ModuleOp

import mlc
from mlc.dialects.hw.accel import INSTRUCTIONS, AluOpcode, ProgramOp
from mlc.dialects.hw.accel_intrinsics import ACCEL_GEMM
from mlc.interpreters.accel import CostModel, SimulationError, simulate
from mlc.lowering.graph_to_accel import Epilogue, lower_conv2d, lower_matmul, program_of
from mlc.parser.mlir import IRDiagnostic, parse_module
from mlc.registry import make_context
from mlc.testing.coverage import covers
from mlc.testing.semantics import assert_preserves_semantics
from mlc.transforms.graph.placement import AccelPlacementPass

CTX = make_context()
RNG = np.random.default_rng(7)


def i8(*shape: int) -> np.ndarray:
    return RNG.integers(-128, 128, shape).astype(np.int8)


def example(op: type) -> str:
    doc = inspect.getdoc(op) or ""
    return doc[doc.index("%") :].strip()


# --------------------------------------------------------------------------- the ISA


PRELUDE = """func.func @f(%a: tensor<32x48xi8>) -> tensor<32x16xi8> {
  %r = hw.accel.program(%a) : (tensor<32x48xi8>) -> tensor<32x16xi8> {
  ^bb0(%A: memref<32x48xi8>, %C: memref<32x16xi8>):
    %t0 = hw.accel.load %A[0] stride 48 rows 16 cols 16 -> inp[0] : memref<32x48xi8>
    %t1 = hw.accel.load %A[0] stride 48 rows 16 cols 16 -> wgt[1] : memref<32x48xi8>
    {line}
  }}
  func.return %r : tensor<32x16xi8>
}}"""


def round_trip(text: str) -> str:
    module = parse_module(CTX, text, "<test>")
    printed = str(module)
    assert str(parse_module(CTX, printed, "<printed>")) == printed
    from io import StringIO

    from xdsl.printer import Printer

    generic = StringIO()
    Printer(stream=generic, print_generic_format=True).print_op(module)
    assert str(parse_module(CTX, generic.getvalue(), "<generic>")) == printed
    return printed


@pytest.mark.parametrize("op", INSTRUCTIONS, ids=lambda op: op.name)
def test_instruction_docstring_examples_round_trip(op: type) -> None:
    line = example(op)
    assert line in round_trip(PRELUDE.replace("{line}", line).replace("}}", "}"))


def test_program_docstring_example_round_trips_and_runs() -> None:
    body = example(ProgramOp)
    text = (
        "func.func @f(%a: tensor<16x16xi8>, %b: tensor<16x16xi8>) -> tensor<16x16xi32> {\n"
        f"{body}\n  func.return %c : tensor<16x16xi32>\n}}"
    )
    printed = round_trip(text)
    for line in body.splitlines():
        assert line.strip() in printed
    a, b = i8(16, 16), i8(16, 16)
    (c,) = mlc.interpret(parse_module(CTX, text, "<test>"), a, b)
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%x = hw.accel.load %A[0] stride 48 rows 16 cols 16 -> inp[128] : memref<32x48xi8>",
         "outside the buffer"),
        ("%x = hw.accel.load %A[0] stride 48 rows 17 cols 16 -> inp[0] : memref<32x48xi8>",
         "a tile is"),
        ("%x = hw.accel.load %A[1500] stride 48 rows 2 cols 16 -> inp[0] : memref<32x48xi8>",
         "leaves the"),
        ("%x = hw.accel.load %A[0] stride 48 rows 1 cols 16 -> acc[0] : memref<32x48xi8>",
         "need i32"),
        ("%x = hw.accel.alu add acc[0], acc[1] imm 3", "exactly one"),
        ("%x = hw.accel.alu shr acc[0], imm 32", "outside"),
        ("%x = hw.accel.alu shr acc[0], acc[1]", "immediate"),
        ("%x = hw.accel.gemm inp[0], wgt[1024] -> acc[0]", "outside the buffer"),
    ],
)  # fmt: skip
def test_verifier_rejects(line: str, message: str) -> None:
    with pytest.raises(IRDiagnostic, match=message):
        parse_module(CTX, PRELUDE.replace("{line}", line).replace("}}", "}"), "<test>")


def test_instruction_outside_a_program_is_rejected() -> None:
    text = '%t = "hw.accel.gemm"() <{inp = 0 : i64, wgt = 0 : i64, acc = 0 : i64}> : () -> !hw.accel.token'
    with pytest.raises(IRDiagnostic, match="inside an hw.accel.program"):
        parse_module(CTX, text, "<test>")


# --------------------------------------------------------------------------- the simulator


def program(body: str, args: str, results: str, shapes: str) -> ProgramOp:
    """A program over tensors; `shapes`: the memref types of the block arguments."""
    text = f"""func.func @f({args}) -> {results} {{
  %r = hw.accel.program(%a) : ({args.split(": ")[1]}) -> {results} {{
  ^bb0({shapes}):
{body}
  }}
  func.return %r : {results}
}}"""
    module = parse_module(CTX, text, "<test>")
    (prog,) = [op for op in module.walk() if isinstance(op, ProgramOp)]
    return prog


def test_simulator_counts_cycles_of_the_documented_model() -> None:
    text = example(ProgramOp)
    module = parse_module(
        CTX,
        "func.func @f(%a: tensor<16x16xi8>, %b: tensor<16x16xi8>) -> tensor<16x16xi32> {\n"
        f"{text}\n  func.return %c : tensor<16x16xi32>\n}}",
        "<test>",
    )
    (prog,) = [op for op in module.walk() if isinstance(op, ProgramOp)]
    _, report = simulate(prog, [i8(16, 16), i8(16, 16)])
    cost = CostModel()
    load = cost.dma_latency + 256 // cost.dma_bytes_per_cycle  # 32: two loads in one queue
    store = cost.dma_latency + 1024 // cost.dma_bytes_per_cycle  # 80: i32 tile
    assert report.cycles == 2 * load + cost.gemm_cycles + store == 160
    assert report.gemm_busy == 16 and report.utilization == pytest.approx(0.1)
    assert report.counts == {"hw.accel.load": 2, "hw.accel.gemm": 1, "hw.accel.store": 1}


def test_alu_partial_tiles_broadcast_and_narrowing_store() -> None:
    prog = program(
        """
    %0 = hw.accel.load %A[0] stride 5 rows 3 cols 5 -> acc[0] : memref<3x5xi32>
    %1 = hw.accel.load %A[5] stride 0 rows 16 cols 5 -> acc[1] : memref<3x5xi32>
    %2 = hw.accel.alu add acc[0], acc[1]
    %3 = hw.accel.alu shr acc[0], imm 2
    %4 = hw.accel.alu max acc[0], imm -100
    %5 = hw.accel.alu min acc[0], imm 300
    %6 = hw.accel.store acc[0] -> %C[0] stride 5 rows 3 cols 5 after(%5) : memref<3x5xi8>""",
        "%a: tensor<3x5xi32>",
        "tensor<3x5xi8>",
        "%A: memref<3x5xi32>, %C: memref<3x5xi8>",
    )
    a = RNG.integers(-2000, 2000, (3, 5)).astype(np.int32)
    (c,), report = simulate(prog, [a])
    want = np.clip((a + a[1]) >> 2, -100, 300).astype(np.int8)  # the store wraps
    np.testing.assert_array_equal(c, want)
    assert report.queue_busy["compute"] > 0 and report.gemm_busy == 0


def test_gemm_is_the_intrinsic_expression() -> None:
    a = RNG.choice(np.array([-128, 127, -1, 0, 5], np.int8), (16, 16))
    b = RNG.choice(np.array([-128, 127, 3, 0], np.int8), (16, 16))
    fn = lower_matmul(16, 16, 16)
    (c,), _ = simulate(program_of(fn), [a, b])
    np.testing.assert_array_equal(c, ACCEL_GEMM.reference({"A": a, "B": b}, {}))


def test_tensorize_unifies_the_intrinsic_and_explains_why_it_is_not_used() -> None:
    """The declaration is a real candidate for tensorize's matcher: an int8 16^3 tl tile
    unifies with it, and `check_sizes` turns it down with the reason (the accelerator's
    GEMM reads on-chip slots, not memref tiles)."""
    from xdsl.builder import Builder, InsertPoint
    from xdsl.dialects import func, memref
    from xdsl.dialects.builtin import MemRefType, StringAttr, i8, i32

    from mlc.dialects.hw.accel_intrinsics import GEMM16, NOT_A_CPU_TILE
    from mlc.lowering.texpr_to_tl import texpr_kernel
    from mlc.texpr import parse
    from mlc.transforms.loops.schedule import Schedule
    from mlc.transforms.loops.tensorize import explain

    tile = MemRefType(i8, [16, 16])
    f = func.FuncOp("main", ([tile, tile], [MemRefType(i32, [16, 16])]))
    builder = Builder(InsertPoint.at_end(f.body.block))
    c = builder.insert(memref.AllocOp.get(i32, shape=[16, 16])).memref
    a, b = f.body.block.args
    kernel = texpr_kernel(parse(GEMM16), {"A": a, "B": b, "C": c})
    kernel.properties["label"] = StringAttr("mm")
    builder.insert(kernel)
    builder.insert(func.ReturnOp(c))
    module = ModuleOp([f])
    sch = Schedule(module)
    sch.lower("mm", keep_inits=True)
    sch.decompose_reduction("mm", "mm/i")
    assert f"accel.gemm16: {NOT_A_CPU_TILE}" in explain(module, "mm/i", "accel.gemm16")


GEMM_BODY = """
    %0 = hw.accel.load %A[0] stride 16 rows 16 cols 16 -> inp[0] : memref<16x16xi8>
    %1 = hw.accel.load %A[0] stride 16 rows 16 cols 16 -> wgt[0] : memref<16x16xi8>
    %2 = hw.accel.gemm inp[0], wgt[0] -> acc[0] reset {deps}
    %3 = hw.accel.load %A[0] stride 16 rows 16 cols 16 -> inp[0] {war} : memref<16x16xi8>
    %4 = hw.accel.store acc[0] -> %C[0] stride 16 rows 16 cols 16 after(%2) : memref<16x16xi32>"""


@pytest.mark.parametrize(
    ("deps", "war", "error"),
    [
        ("after(%0, %1)", "after(%2)", None),
        ("after(%0)", "after(%2)", "wgt\\[0\\] is not ordered"),
        ("after(%0, %1)", "", "inp\\[0\\] is not ordered"),
    ],
)
def test_simulator_checks_token_ordering(deps: str, war: str, error: str | None) -> None:
    prog = program(
        GEMM_BODY.replace("{deps}", deps).replace("{war}", war),
        "%a: tensor<16x16xi8>",
        "tensor<16x16xi32>",
        "%A: memref<16x16xi8>, %C: memref<16x16xi32>",
    )
    a = i8(16, 16)
    if error is None:
        (c,), _ = simulate(prog, [a])
        np.testing.assert_array_equal(c, a.astype(np.int32) @ a.astype(np.int32))
    else:
        with pytest.raises(SimulationError, match=error):
            simulate(prog, [a])


def test_simulator_rejects_reads_of_unwritten_slots() -> None:
    prog = program(
        "    %0 = hw.accel.store acc[3] -> %C[0] stride 16 rows 1 cols 1 : memref<16x16xi32>",
        "%a: tensor<16x16xi8>",
        "tensor<16x16xi32>",
        "%A: memref<16x16xi8>, %C: memref<16x16xi32>",
    )
    with pytest.raises(SimulationError, match="before any write"):
        simulate(prog, [i8(16, 16)])


# --------------------------------------------------------------------------- lowering


@pytest.mark.parametrize("bias", [None, "row", "full"])
def test_lower_matmul_matches_numpy(bias: str | None) -> None:
    m, k, n = 37, 50, 21
    steps = ((AluOpcode.SHR, 3), (AluOpcode.MAX, -20), (AluOpcode.MIN, 90))
    fn = lower_matmul(m, k, n, Epilogue(bias, steps, out_bits=8))
    a, b = i8(m, k), i8(k, n)
    bias_value = RNG.integers(-5000, 5000, (n,) if bias == "row" else (m, n)).astype(np.int32)
    inputs = [a, b, *([bias_value] if bias else [])]
    (got,) = mlc.interpret(ModuleOp([fn]), *inputs)
    acc = a.astype(np.int32) @ b.astype(np.int32) + (bias_value if bias else 0)
    np.testing.assert_array_equal(got, np.clip(acc >> 3, -20, 90).astype(np.int8))


def test_lower_matmul_with_many_weight_groups() -> None:
    # K = 1040 -> 65 K tiles: the weight buffer holds 15 N tiles per group, N has 20
    m, k, n = 3, 1040, 320
    a, b = i8(m, k), i8(k, n)
    (got,), report = simulate(program_of(lower_matmul(m, k, n)), [a, b])
    np.testing.assert_array_equal(got, a.astype(np.int32) @ b.astype(np.int32))
    assert report.counts["hw.accel.gemm"] == 65 * 20


def conv_reference(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: int, shift: int, relu: bool
) -> np.ndarray:
    """NHWC conv of a padded input, weights (KH, KW, C, M), requantized to int8."""
    kh, kw, c, m = w.shape
    n, h, wd, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    acc = np.zeros((n, oh, ow, m), np.int64)
    for dy in range(kh):
        for dx in range(kw):
            patch = x[:, dy : dy + stride * oh : stride, dx : dx + stride * ow : stride, :]
            acc += np.einsum("nhwc,cm->nhwm", patch.astype(np.int64), w[dy, dx].astype(np.int64))
    y = (acc.astype(np.int32) + bias) >> shift
    return np.clip(y, 0 if relu else -128, 127).astype(np.int8)


@pytest.mark.parametrize(("shape", "stride"), [((2, 7, 9, 20), 1), ((1, 9, 21, 5), 2)])
def test_lower_conv2d_matches_numpy(shape: tuple[int, int, int, int], stride: int) -> None:
    n, h, w, c = shape
    m, kh, kw = 19, 3, 2
    x, wgt = i8(*shape), i8(kh, kw, c, m)
    bias = RNG.integers(-3000, 3000, (m,)).astype(np.int32)
    fn = lower_conv2d(shape, (kh, kw), m, stride=stride, shift=6, relu=False)
    (got,) = mlc.interpret(ModuleOp([fn]), x, wgt.reshape(kh * kw * c, m), bias)
    np.testing.assert_array_equal(got, conv_reference(x, wgt, bias, stride, 6, False))


def test_conv_layer_cycles_and_gemm_utilisation() -> None:
    """The measured layer of docs/new-hardware.md: 3x3 conv, 32 -> 64 channels, 16 x 16
    output (input padded to 18 x 18), int8 with int32 bias, >> 8, relu, int8 output."""
    shape, m = (1, 18, 18, 32), 64
    x, w = i8(*shape), i8(3, 3, 32, m)
    bias = RNG.integers(-20000, 20000, (m,)).astype(np.int32)
    fn = lower_conv2d(shape, (3, 3), m, shift=8, relu=True)
    (y,), report = simulate(program_of(fn), [x, w.reshape(9 * 32, m), bias])
    np.testing.assert_array_equal(y, conv_reference(x, w, bias, 1, 8, True))
    print(f"\nconv 1x18x18x32 * 3x3x32x64 -> 1x16x16x64: {report}")
    assert report.cycles > 0 and 0 < report.utilization <= 1
    macs = 16 * 16 * 64 * 9 * 32
    assert report.counts["hw.accel.gemm"] * 16**3 == macs  # no padding waste in this layer


# --------------------------------------------------------------------------- placement


@st.composite
def accel_graphs(draw: st.DrawFn) -> tuple[str, list[np.ndarray]]:
    """A function with an int8 matmul (i32 via casts, or i8), an epilogue chain the ALU
    can run or not, and CPU ops around it; plus inputs."""
    m, k, n = (draw(st.integers(1, 40)) for _ in range(3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a, b = f"tensor<{m}x{k}xi8>", f"tensor<{k}x{n}xi8>"
    r32, r8 = f"tensor<{m}x{n}xi32>", f"tensor<{m}x{n}xi8>"
    args = [f"%a: {a}", f"%b: {b}"]
    inputs = [rng.integers(-128, 128, shape).astype(np.int8) for shape in ((m, k), (k, n))]
    if draw(st.booleans()):  # i8 x i8 -> i8
        body = [f"%p = graph.matmul %a, %b : ({a}, {b}) -> {r8}"]
        return _function(args, body, "%p", r8), inputs
    body = [
        f"%a32 = graph.cast %a : ({a}) -> tensor<{m}x{k}xi32>",
        f"%b32 = graph.cast %b : ({b}) -> tensor<{k}x{n}xi32>",
        f"%p = graph.matmul %a32, %b32 : (tensor<{m}x{k}xi32>, tensor<{k}x{n}xi32>) -> {r32}",
    ]
    last = "%p"
    bias_shape = draw(st.sampled_from([None, (n,), (1, n), (m, n), (m, 1)]))
    if bias_shape is not None:
        ty = f"tensor<{'x'.join(map(str, bias_shape))}xi32>"
        args.append(f"%bias: {ty}")
        inputs.append(rng.integers(-(2**31), 2**31, bias_shape, dtype=np.int64).astype(np.int32))
        body.append(f"%q = graph.add {last}, %bias : ({r32}, {ty}) -> {r32}")
        last = "%q"
    for i, kind in enumerate(draw(st.lists(st.sampled_from(["relu", "clip", "neg"]), max_size=3))):
        if kind == "clip":
            lo = draw(st.integers(-(2**31), 2**31 - 1))
            hi = draw(st.integers(-(2**31), 2**31 - 1))
            body.append(
                f"%e{i} = graph.clip {last} {{min = {lo} : i32, max = {hi} : i32}} : ({r32}) -> {r32}"
            )
        else:
            body.append(f"%e{i} = graph.{kind} {last} : ({r32}) -> {r32}")
        last = f"%e{i}"
    if draw(st.booleans()):
        body.append(f"%o = graph.cast {last} : ({r32}) -> {r8}")
        return _function(args, body, "%o", r8, extra=draw(st.booleans())), inputs
    return _function(args, body, last, r32), inputs


def _function(args: list[str], body: list[str], result: str, ty: str, extra: bool = False) -> str:
    if extra:  # a CPU op after the accelerator's result
        body = [*body, f"%z = graph.abs {result} : ({ty}) -> {ty}"]
        result = "%z"
    lines = "\n  ".join(body)
    return f"func.func @main({', '.join(args)}) -> {ty} {{\n  {lines}\n  func.return {result} : {ty}\n}}"


@covers("accel-placement")
@settings(max_examples=60, deadline=None)
@given(case=accel_graphs())
def test_accel_placement_preserves_semantics(case: tuple[str, list[np.ndarray]]) -> None:
    text, inputs = case
    module = parse_module(CTX, text, "<generated>")
    assert_preserves_semantics("accel-placement", module, inputs=inputs)
    after = module.clone()
    AccelPlacementPass().apply(CTX, after)
    assert sum(isinstance(op, ProgramOp) for op in after.walk()) == 1
    assert parse_module(CTX, str(after), "<printed>").is_structurally_equivalent(after)


def test_placement_keeps_unsupported_ops_on_the_cpu() -> None:
    text = """func.func @main(%a: tensor<4x8xf32>, %b: tensor<8x3xf32>, %c: tensor<8x3xi32>) -> (tensor<4x3xf32>, tensor<8x3xi32>) {
  %p = graph.matmul %a, %b : (tensor<4x8xf32>, tensor<8x3xf32>) -> tensor<4x3xf32>
  %q = graph.add %c, %c : (tensor<8x3xi32>, tensor<8x3xi32>) -> tensor<8x3xi32>
  func.return %p, %q : tensor<4x3xf32>, tensor<8x3xi32>
}"""
    module = parse_module(CTX, text, "<test>")
    before = str(module)
    AccelPlacementPass().apply(CTX, module)
    assert str(module) == before


# --------------------------------------------------------------------------- the tutorial

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "new-hardware.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
SOURCES = [
    "dialects/hw/accel.py",
    "dialects/hw/accel_intrinsics.py",
    "interpreters/accel.py",
    "lowering/graph_to_accel.py",
]


def test_new_hardware_doc_excerpts_match_the_code_and_its_examples_run() -> None:
    blocks = BLOCK.findall(DOC.read_text())
    code = "\n".join((ROOT / path).read_text() for path in SOURCES)
    excerpts = [text for lang, text in blocks if lang == "py"]
    assert len(excerpts) == 5
    for text in excerpts:
        assert text in code, f"docs/new-hardware.md quotes code that is not in {SOURCES}:\n{text}"
    program_ir, model, placed = [text for lang, text in blocks if lang == "mlir"]
    assert program_ir.strip() == textwrap.dedent(example(ProgramOp))
    module = parse_module(CTX, model, "model.mlir")
    AccelPlacementPass().apply(CTX, module)
    printed = [line.strip() for line in str(module).splitlines()]
    assert [line.strip() for line in placed.splitlines()] == printed[1:-1]
    namespace: dict[str, object] = {"__name__": "new_hardware_md"}
    for i, (lang, text) in enumerate(blocks):
        if lang == "python":
            exec(compile(text, f"{DOC.name}:block{i}", "exec"), namespace)
