"""The indexing and normalization operators compiled (`mlc.compile`) against the
interpreter: the texpr-lowered ops (cumsum, cumprod, top_k, trilu, one_hot, einsum,
rms_norm) and the hand-written `scf.for` lowerings of gather_nd and the scatters
(lowering/indexing_to_tl.py), on the cases their expressions and loops find hard: NaN,
ties and signed zeros, negative and unsigned indices, duplicate scatter positions,
f16 / bf16 combinations, size-1 and empty axes, long axes (rfactor, vectorization), and
indices out of range (a `RuntimeCheckError`, never a read or write outside a buffer).
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import mlc
from mlc.dialects.tl import RuntimeCheckError
from mlc.interpreters import interpret
from mlc.parser.onnx import import_onnx

BF16 = ml_dtypes.bfloat16
RNG = np.random.default_rng(7)


def normal(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def model_of(
    op: str,
    inputs: dict[str, np.ndarray],
    attrs: dict[str, Any] | None = None,
    constants: dict[str, np.ndarray] | None = None,
    opset: int = 18,
    outputs: int = 1,
    order: list[str] | None = None,
) -> onnx.ModelProto:
    """A one-node model; `inputs` are graph inputs (any dtype, bf16 included)."""
    constants = constants or {}
    names = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op, order or [*inputs, *constants], names, **(attrs or {}))
    graph = helper.make_graph(
        [node],
        op.lower(),
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in inputs.items()
        ],
        [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return onnx.shape_inference.infer_shapes(model)


def assert_native_matches(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> None:
    """Compiled results equal the interpreter's: exactly for integers and booleans, to
    1e-5 of the result's magnitude for floats (sums may be reassociated)."""
    want = interpret(import_onnx(model), *inputs.values())
    got = mlc.compile(model)(*inputs.values())
    assert len(got) == len(want)
    for w, g in zip(want, got, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w)
        else:
            w64, g64 = w.astype(np.float64), g.astype(np.float64)
            finite = np.abs(w64[np.isfinite(w64)])
            atol = 1e-5 * max(1.0, float(finite.max(initial=0.0)))
            np.testing.assert_allclose(g64, w64, rtol=1e-5, atol=atol, equal_nan=True)


SPECIAL = np.array([[1, np.nan, 3, 3, -0.0, 0.0, -np.inf], [np.nan, 2, np.inf, np.nan, 2, 0, 5]])

CASES: list[tuple[str, dict[str, np.ndarray], dict[str, Any], dict[str, np.ndarray], int, int]] = [
    # (op, inputs, attrs, constants, opset, outputs)
    ("TopK", {"x": SPECIAL.astype(np.float32)}, {"axis": 1}, {"k": np.array([6])}, 11, 2),
    ("TopK", {"x": SPECIAL.astype(np.float16)}, {"largest": 0}, {"k": np.array([7])}, 11, 2),
    ("TopK", {"x": np.round(normal(257, 3))}, {"axis": 0}, {"k": np.array([9])}, 11, 2),
    ("TopK", {"x": np.array([[3, 1, 3, 250]], np.uint8)}, {}, {"k": np.array([3])}, 11, 2),
    ("TopK", {"x": normal(0, 4)}, {"axis": 1}, {"k": np.array([2])}, 11, 2),
    ("CumSum", {"x": normal(3, 300)}, {"reverse": 1}, {"axis": np.array(1)}, 14, 1),
    (
        "CumSum",
        {"x": (normal(2, 5) * 9).astype(np.int32)},
        {"exclusive": 1},
        {"axis": np.array(-1)},
        14,
        1,
    ),
    (
        "CumSum",
        {"x": normal(4, 1, dtype=BF16)},
        {"exclusive": 1, "reverse": 1},
        {"axis": np.array(0)},
        14,
        1,
    ),
    ("CumProd", {"x": SPECIAL}, {"exclusive": 1}, {"axis": np.array(1)}, 26, 1),
    ("Trilu", {"x": normal(2, 3, 4)}, {"upper": 0}, {"k": np.array(-1)}, 14, 1),
    ("Trilu", {"x": normal(3, 5) > 0}, {}, {"k": np.array(2**62)}, 14, 1),
    ("Trilu", {"x": normal(130, 67)}, {}, {"k": np.array(3)}, 14, 1),
    ("Einsum", {"a": normal(2, 3, 3)}, {"equation": "...ii->...i"}, {}, 12, 1),
    (
        "Einsum",
        {"a": normal(3, 4, dtype=BF16), "b": normal(4, 5, dtype=BF16)},
        {"equation": "ij,jk"},
        {},
        12,
        1,
    ),
    ("Einsum", {"a": normal(2, 300), "b": normal(300)}, {"equation": "ij,j->i"}, {}, 12, 1),
    (
        "Einsum",
        {"a": normal(2, 3), "b": normal(3, 4), "c": normal(4, 2)},
        {"equation": "ij,jk,kl"},
        {},
        12,
        1,
    ),
    ("Einsum", {"a": normal(0, 3), "b": normal(3)}, {"equation": "ab,b->"}, {}, 12, 1),
    (
        "RMSNormalization",
        {"x": normal(2, 3, 8, dtype=np.float16), "w": normal(3, 8, dtype=np.float16)},
        {"axis": 1},
        {},
        23,
        1,
    ),
    ("RMSNormalization", {"x": normal(2, 512), "w": normal(512)}, {}, {}, 23, 1),
    ("GatherND", {"d": normal(2, 3, 4), "i": np.array([[0, -1], [1, 2], [-2, 0]])}, {}, {}, 13, 1),
    (
        "GatherND",
        {"d": normal(2, 3, 4, dtype=BF16), "i": np.array([[[1], [-1]], [[0], [2]]], np.int32)},
        {"batch_dims": 1},
        {},
        13,
        1,
    ),
    ("GatherND", {"d": normal(2, 3), "i": np.array([[1, 2], [0, 0]], np.uint8)}, {}, {}, 13, 1),
    ("GatherND", {"d": normal(2, 3), "i": np.zeros((0, 2), np.int64)}, {}, {}, 13, 1),
]
for _red in ("none", "add", "mul", "max", "min"):
    CASES += [
        (
            "ScatterElements",
            {
                "d": normal(3, 4, dtype=dt),
                "i": np.array([[1, 0, -1, 2], [1, -3, 2, 2]]),
                "u": normal(2, 4, dtype=dt),
            },
            {"axis": 0, "reduction": _red},
            {},
            18,
            1,
        )
        for dt in (np.float32, np.float16, BF16)
    ]
    CASES += [
        (
            "ScatterElements",
            {
                "d": np.array([[200, 3, 9]], np.uint8),
                "i": np.array([[2, 2, 0]], np.uint8),
                "u": np.array([[7, 250, 1]], np.uint8),
            },
            {"axis": 1, "reduction": _red},
            {},
            18,
            1,
        ),
        (
            "ScatterND",
            {
                "d": np.ones((4, 3, 2), np.int32),
                "i": np.array([[1], [-1], [1]]),
                "u": np.arange(18, dtype=np.int32).reshape(3, 3, 2) - 9,
            },
            {"reduction": _red},
            {},
            18,
            1,
        ),
    ]
CASES += [
    (
        "ScatterND",
        {
            "d": SPECIAL,
            "i": np.array([[1, 2], [-1, 2], [0, 0]]),
            "u": np.array([1.0, np.nan, -0.0]),
        },
        {"reduction": "max"},
        {},
        18,
        1,
    ),
    (
        "ScatterND",
        {"d": normal(3, 2), "i": np.zeros((0, 1), np.int64), "u": normal(0, 2)},
        {"reduction": "add"},
        {},
        18,
        1,
    ),
    (
        "ScatterElements",
        {"d": normal(3, 3) > 0, "i": np.array([[0, 1]]), "u": np.zeros((1, 2), bool)},
        {"axis": 1},
        {},
        18,
        1,
    ),
    (
        "OneHot",
        {"i": np.array([[1.7, -1.2], [5, np.nan]], np.float32), "v": np.array([2, 9], np.float32)},
        {"axis": 1},
        {"d": np.array(3.0, np.float32)},
        11,
        1,
    ),
    (
        "OneHot",
        {"i": np.array([0, 255, 7, 8], np.uint8), "v": np.array([2, 9], BF16)},
        {"axis": 0},
        {"d": np.array(8)},
        11,
        1,
    ),
    (
        "OneHot",
        {"i": np.array([0, -1, -8, -9, 7, 8], np.int32), "v": np.array([False, True])},
        {},
        {"d": np.array(8)},
        11,
        1,
    ),
]


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "constants", "opset", "outputs"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_native_matches_interpreter(
    op: str,
    inputs: dict[str, np.ndarray],
    attrs: dict[str, Any],
    constants: dict[str, np.ndarray],
    opset: int,
    outputs: int,
) -> None:
    order = ["i", "d", "v"] if op == "OneHot" else None
    model = model_of(op, inputs, attrs, constants, opset, outputs, order)
    assert_native_matches(model, inputs)


def test_scatter_inside_a_graph() -> None:
    """A scatter's result buffer is written by a copy kernel and then by loops: fusion,
    epilogues and concatenation in place must keep both (relu -> scatter -> neg, a
    matmul's output scattered into, scatter results concatenated)."""
    nodes = [
        helper.make_node("Relu", ["x"], ["rx"]),
        helper.make_node("ScatterND", ["rx", "i", "u"], ["s"], reduction="add"),
        helper.make_node("Neg", ["s"], ["n"]),
        helper.make_node("ScatterND", ["x", "i", "u"], ["s2"]),
        helper.make_node("Concat", ["s", "s2", "rx"], ["c"], axis=0),
        helper.make_node("MatMul", ["x", "w"], ["mm"]),
        helper.make_node("ScatterElements", ["mm", "ie", "ue"], ["se"], axis=1, reduction="max"),
        helper.make_node("Relu", ["se"], ["r"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "scatters",
        [value("x", 1, [4, 3]), value("i", 7, [2, 1]), value("u", 1, [2, 3])]
        + [value("ie", 7, [4, 2]), value("ue", 1, [4, 2])],
        [
            value("n", 1, [4, 3]),
            value("c", 1, [12, 3]),
            value("s2", 1, [4, 3]),
            value("r", 1, [4, 5]),
        ],
        [numpy_helper.from_array(normal(3, 5), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    inputs = {
        "x": normal(4, 3),
        "i": np.array([[1], [3]]),
        "u": normal(2, 3),
        "ie": np.array([[0, 4], [1, 1], [-1, 2], [3, 3]]),
        "ue": normal(4, 2) * 3,
    }
    assert_native_matches(model, inputs)


OUT_OF_RANGE = [
    (
        "GatherND",
        {"d": normal(2, 3, 4), "i": np.array([[0, 3]])},
        {},
        r"graph.gather_nd \(axis 1, size 3\)",
    ),
    ("GatherND", {"d": normal(2, 3), "i": np.array([[2, 0]], np.uint8)}, {}, r"axis 0, size 2"),
    (
        "ScatterElements",
        {"d": normal(3, 4), "i": np.array([[4]]), "u": normal(1, 1)},
        {"axis": 0},
        r"graph.scatter_elements \(axis 0, size 3\)",
    ),
    (
        "ScatterElements",
        {"d": normal(3, 4), "i": np.array([[-(2**63)]]), "u": normal(1, 1)},
        {"axis": 1},
        r"out of range \[-4, 4\)",
    ),
    (
        "ScatterND",
        {"d": normal(3, 4), "i": np.array([[0, -5]]), "u": normal(1)},
        {},
        r"graph.scatter_nd \(axis 1, size 4\)",
    ),
    (
        "ReverseSequence",
        {"x": normal(3, 4), "l": np.array([5, 1, 2])},
        {"batch_axis": 0, "time_axis": 1},
        r"out of range",
    ),
]


@pytest.mark.parametrize(("op", "inputs", "attrs", "match"), OUT_OF_RANGE)
def test_out_of_range_indices_fail_the_call(
    op: str, inputs: dict[str, np.ndarray], attrs: dict[str, Any], match: str
) -> None:
    model = model_of(op, inputs, attrs, opset=10 if op == "ReverseSequence" else 18)
    compiled = mlc.compile(model)
    with pytest.raises(RuntimeCheckError, match=match):
        compiled(*inputs.values())
    with pytest.raises(IndexError, match="out of range"):
        interpret(import_onnx(model), *inputs.values())
