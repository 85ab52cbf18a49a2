"""The CNN zoo (`mlc.benchmarks.zoo`): valid models with the standard layer structure, finite
onnxruntime outputs, and one reduced ResNet compiled by mlc matching onnxruntime. Compiling the
zoo's own models takes mlc tens of seconds each, so that is left to the benchmarks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
import pytest

from mlc.benchmarks.models import Case
from mlc.benchmarks.zoo import (
    ZOO,
    densenet121,
    inception_v1,
    mobilenet_v2,
    param_count,
    resnet50,
    squeezenet,
)

#: the Conv count of each architecture (the small variants keep the layer structure)
CONVS = {"resnet50": 53, "densenet121": 120, "inception_v1": 57, "squeezenet": 26} | {
    "mobilenet_v2": 52
}


def _ops(case: Case) -> Counter[str]:
    return Counter(n.op_type for n in case.model.graph.node)


def _ort(case: Case) -> np.ndarray:
    pytest.importorskip("onnxruntime")
    (y,) = case.onnxruntime_outputs()
    return y


@pytest.mark.parametrize("name", list(ZOO))
def test_small_model_structure_and_ort(name: str) -> None:
    case = ZOO[name].make(small=True)
    onnx.checker.check_model(case.model, full_check=True)
    assert case.model.opset_import[0].version == 17 and case.model.ir_version == 8
    assert len(case.inputs) == 1 and case.inputs[0].shape == (1, 3, 32, 32)
    assert case.inputs[0].dtype == np.float32 and case.numpy_fn is None
    assert _ops(case)["Conv"] == CONVS[name]
    y = _ort(case)
    assert y.shape == (1, 1000) and np.isfinite(y).all()


def test_small_models_are_deterministic() -> None:
    a, b = ZOO["inception_v1"].make(small=True), ZOO["inception_v1"].make(small=True)
    assert a.model.SerializeToString() == b.model.SerializeToString()
    np.testing.assert_array_equal(a.inputs[0], b.inputs[0])


def test_op_structure() -> None:
    r = _ops(resnet50(32, 1 / 16))
    assert r["BatchNormalization"] == 53 and r["Add"] == 16 and r["Relu"] == 49
    assert r["MaxPool"] == 1 and r["Gemm"] == 1 and r["GlobalAveragePool"] == 1
    d = _ops(densenet121(32, growth=4))
    assert d["BatchNormalization"] == 121 and d["AveragePool"] == 3
    assert d["Concat"] == 58  # one per layer but a block's first, one at each block's end
    g = _ops(inception_v1(32, 1 / 8))
    assert g["Concat"] == 9 and g["MaxPool"] == 13 and g["Relu"] == 57
    s = _ops(squeezenet(32, 1 / 8))
    assert s["Concat"] == 8 and s["MaxPool"] == 3 and "Gemm" not in s
    m = _ops(mobilenet_v2())
    assert m["Clip"] == 35 and m["Add"] == 10
    groups = [
        a.i for n in mobilenet_v2().model.graph.node for a in n.attribute if a.name == "group"
    ]
    assert sum(g > 1 for g in groups) == 17


@pytest.mark.parametrize(
    ("builder", "convs", "params", "gflops"),
    [
        (resnet50, 53, 25_557_032, 8.18),
        (densenet121, 120, 7_978_856, 5.67),
        (inception_v1, 57, None, 3.17),
        (squeezenet, 26, 1_235_496, 0.70),
        (mobilenet_v2, 52, 3_504_872, 0.60),
    ],
)
def test_full_size_structure(
    builder: Callable[[], Case], convs: int, params: int | None, gflops: float
) -> None:
    """Built, not run: the torchvision parameter counts (BN running statistics and the Relu6
    bounds aside) and the usual multiply-add counts."""
    case = builder()
    assert case.inputs[0].shape == (1, 3, 224, 224)
    assert _ops(case)["Conv"] == convs
    assert case.model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == 1000
    if params is not None:
        nodes = case.model.graph.node
        inits = {t.name: t for t in case.model.graph.initializer}
        bn = [inits[n.input[3]] for n in nodes if n.op_type == "BatchNormalization"]
        stats = 2 * sum(int(t.dims[0]) for t in bn) + 2 * ("relu6.min" in inits)
        assert param_count(case) - stats == params
    assert case.flops is not None and abs(case.flops / 1e9 - gflops) < 0.01


def test_reduced_resnet_compiles_and_matches_ort() -> None:
    """One strided bottleneck (projection shortcut, BN, Add) after the stem, through mlc."""
    import mlc

    case = resnet50(32, 1 / 16, blocks=(0, 1), classes=10)
    ref = _ort(case)
    (y,) = mlc.compile(case.model)(*case.inputs)
    np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-4)
