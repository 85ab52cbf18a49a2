"""The imported CNN through convert-graph-to-tl and schedule passes keeps its results."""

from pathlib import Path

import numpy as np
from xdsl.passes import PassPipeline

import mlc
from mlc.registry import all_pass_factories, make_context
from mlc.tools import mlc_opt

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SCHEDULE = (
    'convert-graph-to-tl,tl-split{kernel="relu_1" loop="i2" factor=4},'
    'tl-reorder{kernel="relu_1" order="i0,i2.o,i1,i2.i,i3"},'
    'tl-parallel{kernel="relu_1" loop="i2.o"},tl-vectorize{kernel="relu_1" loop="i3" width=8}'
)


def test_scheduled_cnn_matches_graph_semantics() -> None:
    module = mlc.import_onnx(EXAMPLES / "tiny_resnet.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (expected,) = mlc.interpret(module, x)
    PassPipeline.parse_spec(all_pass_factories(), SCHEDULE).apply(make_context(), module)
    text = str(module)
    assert "graph." not in text and "tl.for %i2.o = 0 to 4 parallel" in text
    (actual,) = mlc.interpret(module, x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_mlc_opt_runs_the_pipeline_on_the_onnx_model(capsys) -> None:  # type: ignore[no-untyped-def]
    assert mlc_opt.main([str(EXAMPLES / "tiny_resnet.onnx"), "-p", SCHEDULE]) == 0
    out = capsys.readouterr().out
    assert 'tl.kernel "conv_1"' in out and "vectorize(8)" in out
