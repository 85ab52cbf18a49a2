"""ONNX import: models become `func.func @main` of graph-dialect ops."""

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
