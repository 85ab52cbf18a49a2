"""Shared by the deploy tests: the tiny CNN's paths, inputs, and a fake backend."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlc.deploy.wheel_runtime import TensorSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TINY_CNN = EXAMPLES / "tiny_resnet.onnx"
NAME = "tinycnn"
BATCH_SIZES = [4]  # (one compile; 7 rows run as 4 + 3 padded to 4)


@dataclass(frozen=True)
class Packaged:
    """The wheel of the tiny CNN and its contents unpacked."""

    wheel: Path
    #: the unpacked package directory (mlc_model.json, lib/, ...)
    package: Path
    metadata: dict[str, Any]


def images(rows: int, seed: int = 0) -> np.ndarray:
    """`rows` random inputs of the tiny CNN."""
    return np.random.default_rng(seed).standard_normal((rows, 3, 32, 32)).astype(np.float32)


class SlowDoubler:
    """A fake backend: y = 2x after `delay` seconds per run; counts its runs' batch rows."""

    platform = "fake"
    batched = True

    def __init__(self, name: str = "doubler", delay: float = 0.0, features: int = 4) -> None:
        self.name = name
        self.delay = delay
        self.inputs = [TensorSpec("x", np.dtype(np.float32), (None, features))]
        self.outputs = [TensorSpec("y", np.dtype(np.float32), (None, features))]
        self.runs: list[int] = []

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        self.runs.append(int(inputs[0].shape[0]))
        if self.delay:
            time.sleep(self.delay)
        return [inputs[0] * 2]
