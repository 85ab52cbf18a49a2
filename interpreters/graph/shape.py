"""Reference semantics of the shape graph ops (ONNX semantics)."""

from __future__ import annotations
