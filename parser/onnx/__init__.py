"""ONNX import: models become `func.func @main` of graph-dialect ops. The converter modules
(one per op family) are imported here, so each has registered its converters before
`import_onnx` runs."""

from mlc.parser.onnx import (  # noqa: F401  (each registers its converters)
    elementwise,
    indexing,
    ml_linear,
    ml_trees,
    nn,
    normalization,
    quant,
    recurrent,
    reduce,
    resize,
    shape,
    spectral,
)
from mlc.parser.onnx.importer import OnnxImportError, import_onnx, load_model
from mlc.parser.onnx.node import CONVERTERS, NodeContext, Unsupported, converter

__all__ = [
    "CONVERTERS",
    "NodeContext",
    "OnnxImportError",
    "Unsupported",
    "converter",
    "import_onnx",
    "load_model",
]
