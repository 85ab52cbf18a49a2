"""Vector math through glibc's libmvec (`lowering.llvm_vector_math`): whole-vector calls where
the host has a variant, results within a few ulp of numpy's, a per-lane libm fallback,
and shared libraries that link libmvec."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mlc
from mlc.lowering.llvm_vector_math import vector_symbol
from mlc.targets.cpu import host_features

HOST = host_features()
LANES = HOST.vector_bits // 32
needs_libmvec = pytest.mark.skipif(
    vector_symbol("exp", 32, LANES, HOST) is None, reason="no libmvec variant for this host"
)

#: ONNX op, numpy reference, input range
UNARY = [
    ("Exp", np.exp, (-80.0, 80.0)),
    ("Log", np.log, (1e-30, 1e30)),
    ("Tanh", np.tanh, (-10.0, 10.0)),
    ("Sin", np.sin, (-100.0, 100.0)),
    ("Erf", None, (-4.0, 4.0)),
]


def _model(op: str, n: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _ulps(got: np.ndarray, want: np.ndarray) -> int:
    a, b = got.view(np.int32).astype(np.int64), want.view(np.int32).astype(np.int64)
    return int(np.abs(a - b).max())


@needs_libmvec
@pytest.mark.parametrize(("op", "ref", "bounds"), UNARY, ids=[u[0] for u in UNARY])
def test_vector_calls_are_within_a_few_ulp(op: str, ref: object, bounds: tuple) -> None:
    n = 5 * LANES + 3  # whole vectors and a remainder
    x = np.random.default_rng(0).uniform(*bounds, n).astype(np.float32)
    vec = mlc.compile(_model(op, n))
    per_lane = mlc.compile(_model(op, n), vector_math=False)
    vector_call = "mlc_expf_v" if op == "Exp" else "_ZGV"  # exp: `targets.inline_math`
    assert vector_call in vec.llvm_ir_unoptimized
    assert vector_call not in per_lane.llvm_ir_unoptimized
    (got,), (libm,) = vec(x), per_lane(x)
    want = libm if ref is None else ref(x.astype(np.float64)).astype(np.float32)
    assert _ulps(got, want) <= 4
    assert _ulps(libm, want) <= 4 if ref is not None else True


@needs_libmvec
def test_special_values_go_through() -> None:
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 89.0, -104.0, 1e-40] * LANES, np.float32)
    (got,) = mlc.compile(_model("Exp", x.size))(x)
    with np.errstate(over="ignore"):
        want = np.exp(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=4e-7)


@needs_libmvec
def test_exported_library_links_libmvec(tmp_path: Path) -> None:
    model = mlc.compile(_model("Tanh", 4 * LANES))
    lib = model.export(tmp_path / "tanh.so")
    loaded = mlc.load(lib.path)
    x = np.linspace(-3, 3, 4 * LANES).astype(np.float32)
    np.testing.assert_array_equal(loaded(x)[0], model(x)[0])
