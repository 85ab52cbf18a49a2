"""mlc: an MLIR-style, multi-dialect machine-learning compiler built on xDSL.

import mlc
module = mlc.import_onnx("model.onnx")     # func.func of graph ops
outputs = mlc.interpret(module, x)          # reference semantics (numpy)
model = mlc.compile("model.onnx")           # native (LLVM, host CPU); model(x) -> outputs
model.export("model.so")                    # + model.h; mlc.load("model.so")(x) -> outputs
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    import numpy as np
    from xdsl.context import Context
    from xdsl.dialects.builtin import ModuleOp

    from mlc.quantization import QuantizedModel
    from mlc.targets.aot import LoadedModel
    from mlc.targets.compiled import CompiledModel
    from mlc.targets.rowwise import RowwiseModel


def context() -> Context:
    """An xDSL `Context` with every xDSL dialect and every mlc dialect registered."""
    from mlc.registry import make_context

    return make_context()


def import_onnx(model: Any, **options: Any) -> ModuleOp:
    """Import an ONNX model (path, bytes or `onnx.ModelProto`) as a graph-dialect module;
    options as `mlc.parser.onnx.import_onnx` (`input_shapes`, `input_values`, `base_dir`:
    the directory of external data, needed for bytes or a ModelProto that has some). A
    fitted scikit-learn / XGBoost / LightGBM estimator is converted first
    (`mlc.parser.estimators`; its input "X" has a symbolic batch: give
    `input_shapes={"X": (rows, features)}`)."""
    from mlc.parser.estimators import is_estimator, to_onnx_model
    from mlc.parser.onnx import import_onnx as _import

    if is_estimator(model):
        model = to_onnx_model(model)
    return _import(model, **options)


def interpret(
    module: ModuleOp, *inputs: np.ndarray, function: str | None = None
) -> list[np.ndarray]:
    """Run a module with the reference semantics of its ops; returns numpy arrays."""
    from mlc.interpreters import interpret as _interpret

    return _interpret(module, *inputs, function=function)


def compile(model: Any, **options: Any) -> CompiledModel | RowwiseModel:  # noqa: A001
    """JIT-compile an ONNX model (path or ModelProto) or a graph/tl module for the host
    CPU; the result is called with numpy arrays and returns numpy arrays. Options as
    `mlc.targets.compiled.compile_model` (e.g. `tuning_db="tuning.db"`: the best tuned
    schedule per kernel, from `mlc tune` / `mlc.tuning.tune`; `tree_strategy="perfect"`).

    A fitted scikit-learn / XGBoost / LightGBM estimator (or any model with
    `rowwise=True`: its rows independent) gives a `RowwiseModel` that takes any batch
    size, compiling per batch bucket on first use (docs/trees.md)."""
    from mlc.targets.compiled import compile_model

    return compile_model(model, **options)


def quantize(model: Any, calibration_data: Any, **options: Any) -> QuantizedModel:
    """Post-training quantization of a float ONNX model: calibrate on
    `calibration_data`, get a QDQ model (`.model`, `.save("m.onnx")`, `.compile()`) and a
    report of what became integer (`mlc.quantization.quantize`, docs/quantization.md)."""
    from mlc.quantization import quantize as _quantize

    return _quantize(model, calibration_data, **options)


def load(path: Any, *, verify: bool = True) -> LoadedModel:
    """Load a shared library written by `CompiledModel.export` (or `mlc compile`), once it
    matches its manifest (`<library>.mlc.json`; `verify=False` skips that, for libraries
    you trust); the result is called like the compiled model: numpy in, numpy out."""
    from mlc.targets.aot import load as _load

    return _load(path, verify=verify)


__all__ = ["compile", "context", "import_onnx", "interpret", "load", "quantize", "__version__"]
