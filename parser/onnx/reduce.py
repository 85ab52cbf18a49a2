"""Converters of ONNX operators to the reduce graph ops."""

from __future__ import annotations
