"""Converters of ONNX operators to the nn graph ops."""

from __future__ import annotations
