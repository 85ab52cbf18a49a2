"""Reference semantics of the reduce graph ops (ONNX semantics)."""

from __future__ import annotations
