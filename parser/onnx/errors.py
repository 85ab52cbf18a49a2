"""The error the ONNX importer raises for models it cannot or will not import."""

from __future__ import annotations


class OnnxImportError(ValueError):
    """The model cannot be imported; the message lists every problem found."""


class DynamicShapeError(OnnxImportError):
    """The model's only problem: graph inputs with dynamic dimensions and no static shape
    given (`input_shapes`). `mlc.compile` specializes such a model per input shape
    (`targets.specialize`)."""
