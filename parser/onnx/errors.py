"""The error the ONNX importer raises for models it cannot or will not import."""

from __future__ import annotations


class OnnxImportError(ValueError):
    """The model cannot be imported; the message lists every problem found."""
