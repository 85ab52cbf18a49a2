"""Converters of ONNX operators to the shape graph ops."""

from __future__ import annotations
