"""Reference semantics of the nn graph ops (ONNX semantics)."""

from __future__ import annotations
