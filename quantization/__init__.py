"""Post-training quantization (`mlc.quantize`): calibrate a float ONNX model, write it as
QDQ ONNX, and compile it with integer kernels (docs/quantization.md)."""

from mlc.quantization.api import (
    LayerSensitivity,
    QuantizedModel,
    calibrate,
    load_model,
    quantize,
    sensitivity,
)
from mlc.quantization.calibrators import CALIBRATORS, Calibrator, make_calibrator
from mlc.quantization.params import ACTIVATION_SCHEMES, QuantParams
from mlc.quantization.plan import KeptFloat, Layer, LayerPlan, plan_layers
from mlc.quantization.qdq import write_qdq

__all__ = [
    "ACTIVATION_SCHEMES",
    "CALIBRATORS",
    "Calibrator",
    "KeptFloat",
    "Layer",
    "LayerPlan",
    "LayerSensitivity",
    "QuantParams",
    "QuantizedModel",
    "calibrate",
    "load_model",
    "make_calibrator",
    "plan_layers",
    "quantize",
    "sensitivity",
    "write_qdq",
]
