"""Two small real models, trained here in numpy on scikit-learn's digits and exported as ONNX.

    from mlc.benchmarks.digits import load_digits_split, model_path, train_cnn, with_batch
    split = load_digits_split()        # 1347 train / 450 test images, [N, 1, 8, 8] in [0, 1]
    model = train_cnn(split)           # an onnx.ModelProto: input "x" [N, 1, 8, 8] -> "logits"
    fixed = with_batch(model, 64)      # the batch fixed at 64, for mlc.compile
    path = model_path("mlp")           # trained once, cached under $MLC_CACHE_DIR/digits/

    python -m mlc.benchmarks.digits [-o DIR]   # train (or reuse) both, report test accuracies

The data is `sklearn.datasets.load_digits` (1797 8x8 grey images of the digits 0-9, bundled
with scikit-learn: no download), pixels scaled from 0..16 to [0, 1], split by
`train_test_split(test_size=0.25, random_state=0, stratify=y)`.

The models (opset 17, IR version 8, float32, the batch dimension symbolic "N"; weights
stored as PyTorch exports them, Gemm with `transB=1`):

- `mlp`: x [N, 64] -> Gemm 64->128 -> Relu -> Gemm 128->64 -> Relu -> Gemm 64->10.
- `cnn`: x [N, 1, 8, 8] -> Conv 3x3 pad 1, 16 channels -> Relu -> Conv 3x3 pad 1, 32 -> Relu
  -> MaxPool 2x2 -> Conv 3x3 pad 1, 32 -> Relu -> Flatten -> Gemm 512->10 (convs with bias).

Training is numpy only, forward and backward by hand (convolutions by im2col), float32:
He-normal weights from `numpy.random.default_rng(seed)`, a fresh permutation of the
training set per epoch from the same generator, mini-batches, softmax cross-entropy, Adam,
a fixed number of epochs (`CONFIGS`), BLAS on one thread. The weights depend only on the
seed (and the machine's float arithmetic). With the defaults the MLP trains in about 1 s
and the CNN in about 6 s on one core, to about 98% test accuracy each.

The command line trains (or reuses) both models, saves them in `-o DIR` (default: the
cache), checks the numpy forward pass against onnxruntime (1 thread) and prints the test
accuracy with onnxruntime and with `mlc.compile` at each of `--batches` (default 1 and
64); it exits 1 if mlc's predictions differ from onnxruntime's.

`model_path` names a cached model by a hash of its hyperparameters (`config_hash`) and
writes it atomically (a temporary file in the same directory, then `os.replace`), so
benchmark runs train once; bump `TRAINING_VERSION` when the training code changes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.targets.compile_cache import default_cache_dir

__all__ = [
    "CONFIGS",
    "KINDS",
    "DigitsSplit",
    "TrainConfig",
    "accuracy",
    "batched_logits",
    "config_hash",
    "default_digits_dir",
    "export_onnx",
    "flatten",
    "load_digits_split",
    "main",
    "mlc_runner",
    "model_params",
    "model_path",
    "numpy_logits",
    "ort_runner",
    "train",
    "train_cnn",
    "train_mlp",
    "train_params",
    "with_batch",
]

OPSET = 17
IR_VERSION = 8
#: bump when the training code changes in a way that changes the trained weights
TRAINING_VERSION = 1
KINDS = ("mlp", "cnn")
CLASSES = 10
#: the MLP's layer widths, input to output
MLP_SIZES = (64, 128, 64, 10)
#: the CNN's three conv layers' output channels
CNN_CHANNELS = (16, 32, 32)

Params = dict[str, np.ndarray]
Runner = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class TrainConfig:
    """The hyperparameters of one training run (Adam; the learning rate decays by
    `lr_decay` per epoch)."""

    epochs: int
    batch_size: int = 32
    lr: float = 1e-3
    lr_decay: float = 1.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


#: the defaults of `train_mlp` / `train_cnn` and what `model_path` trains
CONFIGS: dict[str, TrainConfig] = {
    "mlp": TrainConfig(epochs=40, batch_size=32, lr=2e-3, lr_decay=0.93),
    "cnn": TrainConfig(epochs=20, batch_size=32, lr=2e-3, lr_decay=0.88),
}


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """The digits, split deterministically: images float32 [N, 1, 8, 8] in [0, 1], labels
    int64 [N] (1347 training and 450 test images)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def flat(self) -> DigitsSplit:
        """The same split with the images flattened to [N, 64] (the MLP's input)."""
        return DigitsSplit(flatten(self.x_train), self.y_train, flatten(self.x_test), self.y_test)


def flatten(images: np.ndarray) -> np.ndarray:
    """Images [N, 1, 8, 8] (or already [N, 64]) as contiguous float32 [N, 64]."""
    return np.ascontiguousarray(images, dtype=np.float32).reshape(len(images), -1)


def load_digits_split() -> DigitsSplit:
    """scikit-learn's bundled digits, pixels / 16, split 75 / 25 stratified (`random_state=0`)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return DigitsSplit(
        *(np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test))  # type: ignore[arg-type]
    )


# --- numpy layers ---------------------------------------------------------------------------


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.float32(0))


def _dense(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`x @ w.T + b` (w stored [out, in], as Gemm with transB=1)."""
    return x @ w.T + b


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 3x3 stride-1 pad-1 convolution of NHWC `x` with OIHW `w`, by im2col; returns the
    NHWC result and the columns [N*H*W, C*9] (for the backward pass)."""
    n, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # [N, H, W, C, 3, 3]: the (C, kh, kw) order of w.reshape(O, C*9)
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    cols = win.reshape(n * h * wd, c * 9)
    y = cols @ w.reshape(len(w), -1).T + b
    return y.reshape(n, h, wd, len(w)), cols


def _conv_backward(
    g: np.ndarray, cols: np.ndarray, w: np.ndarray, need_dx: bool
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(dx, dw, db) of `_conv` for the NHWC output gradient `g`."""
    n, h, wd, o = g.shape
    c = w.shape[1]
    g2 = g.reshape(-1, o)
    dw = (g2.T @ cols).reshape(w.shape)
    db = g2.sum(0)
    if not need_dx:
        return None, dw, db
    dcols = (g2 @ w.reshape(o, -1)).reshape(n, h, wd, c, 3, 3)
    dxp = np.zeros((n, h + 2, wd + 2, c), g.dtype)
    for i in range(3):
        for j in range(3):
            dxp[:, i : i + h, j : j + wd, :] += dcols[..., i, j]
    return dxp[:, 1:-1, 1:-1, :], dw, db


def _maxpool(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2x2 stride-2 max pooling of NHWC `x`; returns the result and the argmax per window."""
    n, h, w, c = x.shape
    windows = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4)
    windows = windows.reshape(n, h // 2, w // 2, c, 4)
    idx = windows.argmax(-1)
    return np.take_along_axis(windows, idx[..., None], -1)[..., 0], idx


def _maxpool_backward(g: np.ndarray, idx: np.ndarray) -> np.ndarray:
    n, h2, w2, c = g.shape
    d = np.zeros((n, h2, w2, c, 4), g.dtype)
    np.put_along_axis(d, idx[..., None], g[..., None], -1)
    return d.reshape(n, h2, w2, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(n, 2 * h2, 2 * w2, c)


# --- the two models: forward, backward, init ------------------------------------------------


def _mlp_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits of flat `x` [N, 64] and each layer's input (for the backward pass)."""
    inputs = []
    h = x
    layers = len(MLP_SIZES) - 1
    for i in range(1, layers + 1):
        inputs.append(h)
        h = _dense(h, p[f"fc{i}.weight"], p[f"fc{i}.bias"])
        if i < layers:
            h = _relu(h)
    return h, inputs


def _mlp_backward(p: Params, g: np.ndarray, inputs: list[np.ndarray]) -> Params:
    grads: Params = {}
    for i in range(len(inputs), 0, -1):
        h = inputs[i - 1]
        grads[f"fc{i}.weight"] = g.T @ h
        grads[f"fc{i}.bias"] = g.sum(0)
        if i > 1:
            g = (g @ p[f"fc{i}.weight"]) * (h > 0)
    return grads


def _cnn_forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Logits of NCHW `x` [N, 1, 8, 8] (NHWC inside) and the saved activations."""
    a0 = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    z1, cols1 = _conv(a0, p["conv1.weight"], p["conv1.bias"])
    a1 = _relu(z1)
    z2, cols2 = _conv(a1, p["conv2.weight"], p["conv2.bias"])
    a2 = _relu(z2)
    pooled, idx = _maxpool(a2)
    z3, cols3 = _conv(pooled, p["conv3.weight"], p["conv3.bias"])
    a3 = _relu(z3)
    # ONNX Flatten of NCHW: the features in (C, H, W) order
    feat = np.ascontiguousarray(a3.transpose(0, 3, 1, 2)).reshape(len(x), -1)
    logits = _dense(feat, p["fc.weight"], p["fc.bias"])
    saved = {"cols1": cols1, "a1": a1, "cols2": cols2, "a2": a2, "idx": idx}
    saved |= {"cols3": cols3, "a3": a3, "feat": feat}
    return logits, saved


def _cnn_backward(p: Params, g: np.ndarray, s: dict[str, Any]) -> Params:
    grads: Params = {"fc.weight": g.T @ s["feat"], "fc.bias": g.sum(0)}
    a3 = s["a3"]
    n, h, w, c = a3.shape
    d = (g @ p["fc.weight"]).reshape(n, c, h, w).transpose(0, 2, 3, 1) * (a3 > 0)
    d, grads["conv3.weight"], grads["conv3.bias"] = _conv_backward(
        d, s["cols3"], p["conv3.weight"], True
    )
    d = _maxpool_backward(d, s["idx"]) * (s["a2"] > 0)
    d, grads["conv2.weight"], grads["conv2.bias"] = _conv_backward(
        d, s["cols2"], p["conv2.weight"], True
    )
    d = d * (s["a1"] > 0)
    _, grads["conv1.weight"], grads["conv1.bias"] = _conv_backward(
        d, s["cols1"], p["conv1.weight"], False
    )
    return grads


def _he(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _init_mlp(rng: np.random.Generator) -> Params:
    p: Params = {}
    for i, (fan_in, fan_out) in enumerate(zip(MLP_SIZES, MLP_SIZES[1:]), 1):
        p[f"fc{i}.weight"] = _he(rng, (fan_out, fan_in))
        p[f"fc{i}.bias"] = np.zeros(fan_out, np.float32)
    return p


def _init_cnn(rng: np.random.Generator) -> Params:
    p: Params = {}
    c_in = 1
    for i, c in enumerate(CNN_CHANNELS, 1):
        p[f"conv{i}.weight"] = _he(rng, (c, c_in, 3, 3))
        p[f"conv{i}.bias"] = np.zeros(c, np.float32)
        c_in = c
    p["fc.weight"] = _he(rng, (CLASSES, c_in * 4 * 4))
    p["fc.bias"] = np.zeros(CLASSES, np.float32)
    return p


@dataclass(frozen=True)
class _Arch:
    init: Callable[[np.random.Generator], Params]
    forward: Callable[[Params, np.ndarray], tuple[np.ndarray, Any]]
    backward: Callable[[Params, np.ndarray, Any], Params]
    flat: bool


_ARCHS = {
    "mlp": _Arch(_init_mlp, _mlp_forward, _mlp_backward, flat=True),
    "cnn": _Arch(_init_cnn, _cnn_forward, _cnn_backward, flat=False),
}


# --- training -------------------------------------------------------------------------------


def _softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of `logits` against labels `y` and its gradient."""
    z = logits - logits.max(1, keepdims=True)
    e = np.exp(z)
    total = e.sum(1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(np.mean(np.log(total[:, 0]) - z[rows, y]))
    g = e / total
    g[rows, y] -= 1
    return loss, (g / np.float32(len(y))).astype(np.float32)


def train_params(
    kind: str,
    split: DigitsSplit,
    *,
    seed: int = 0,
    config: TrainConfig | None = None,
    verbose: bool = False,
) -> Params:
    """The trained weights of `kind` ("mlp" or "cnn"), by their ONNX initializer names.
    BLAS runs on one thread: the matrices are small (more threads make the CNN ten times
    slower on a loaded machine) and the weights do not depend on the thread count."""
    with _one_blas_thread():
        return _train_params(kind, split, seed, config or CONFIGS[kind], verbose)


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _train_params(
    kind: str, split: DigitsSplit, seed: int, cfg: TrainConfig, verbose: bool
) -> Params:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}: one of {KINDS}")
    arch = _ARCHS[kind]
    rng = np.random.default_rng(seed)
    p = arch.init(rng)
    x = flatten(split.x_train) if arch.flat else split.x_train
    y = split.y_train
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(w) for k, w in p.items()}
    step = 0
    for epoch in range(cfg.epochs):
        lr = cfg.lr * cfg.lr_decay**epoch
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), cfg.batch_size):
            batch = order[start : start + cfg.batch_size]
            logits, saved = arch.forward(p, x[batch])
            loss, g = _softmax_cross_entropy(logits, y[batch])
            losses.append(loss)
            grads = arch.backward(p, g, saved)
            step += 1
            # Adam, the bias corrections folded into the step size
            alpha = lr * np.sqrt(1 - cfg.beta2**step) / (1 - cfg.beta1**step)
            for k, w in p.items():
                m[k] = cfg.beta1 * m[k] + (1 - cfg.beta1) * grads[k]
                v[k] = cfg.beta2 * v[k] + (1 - cfg.beta2) * grads[k] ** 2
                w -= (alpha * m[k] / (np.sqrt(v[k]) + cfg.eps)).astype(np.float32)
        if verbose and ((epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs):
            print(f"  {kind} epoch {epoch + 1}/{cfg.epochs}: training loss {np.mean(losses):.4f}")
    return p


def _logits_of_params(kind: str, p: Params, x: np.ndarray) -> np.ndarray:
    arch = _ARCHS[kind]
    x = flatten(x) if arch.flat else np.asarray(x, np.float32).reshape(-1, 1, 8, 8)
    return arch.forward(p, x)[0]


# --- ONNX export ----------------------------------------------------------------------------


def _graph_model(
    kind: str, p: Params, nodes: list[onnx.NodeProto], in_shape: list[int | str]
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        f"digits_{kind}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(np.ascontiguousarray(w, np.float32), k) for k, w in p.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="mlc-benchmarks"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def export_onnx(kind: str, p: Params) -> onnx.ModelProto:
    """The ONNX model of `kind` with weights `p` (input "x", output "logits", batch "N")."""
    nodes: list[onnx.NodeProto] = []

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{len(nodes)}", **attrs))
        return out

    if kind == "mlp":
        h = "x"
        layers = len(MLP_SIZES) - 1
        for i in range(1, layers + 1):
            out = "logits" if i == layers else f"fc{i}"
            h = node("Gemm", [h, f"fc{i}.weight", f"fc{i}.bias"], out, transB=1)
            if i < layers:
                h = node("Relu", [h], f"relu{i}")
        return _graph_model(kind, p, nodes, ["N", MLP_SIZES[0]])
    if kind == "cnn":
        conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
        h = node("Conv", ["x", "conv1.weight", "conv1.bias"], "conv1", **conv)
        h = node("Relu", [h], "relu1")
        h = node("Conv", [h, "conv2.weight", "conv2.bias"], "conv2", **conv)
        h = node("Relu", [h], "relu2")
        h = node("MaxPool", [h], "pool", kernel_shape=[2, 2], strides=[2, 2])
        h = node("Conv", [h, "conv3.weight", "conv3.bias"], "conv3", **conv)
        h = node("Relu", [h], "relu3")
        h = node("Flatten", [h], "flat", axis=1)
        node("Gemm", [h, "fc.weight", "fc.bias"], "logits", transB=1)
        return _graph_model(kind, p, nodes, ["N", 1, 8, 8])
    raise ValueError(f"unknown model kind {kind!r}: one of {KINDS}")


def train(
    kind: str,
    split: DigitsSplit,
    *,
    seed: int = 0,
    epochs: int | None = None,
    config: TrainConfig | None = None,
    verbose: bool = False,
) -> onnx.ModelProto:
    """Train `kind` ("mlp" or "cnn") with `config` (default `CONFIGS[kind]`; `epochs`
    overrides its epoch count) and export it as ONNX."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}: one of {KINDS}")
    cfg = config or CONFIGS[kind]
    if epochs is not None:
        cfg = replace(cfg, epochs=epochs)
    start = time.perf_counter()
    p = train_params(kind, split, seed=seed, config=cfg, verbose=verbose)
    if verbose:
        acc = float(np.mean(_logits_of_params(kind, p, split.x_test).argmax(1) == split.y_test))
        print(
            f"{kind}: trained in {time.perf_counter() - start:.1f} s, numpy test accuracy {acc:.4f}"
        )
    return export_onnx(kind, p)


def train_mlp(
    split: DigitsSplit, *, seed: int = 0, epochs: int = CONFIGS["mlp"].epochs, verbose: bool = False
) -> onnx.ModelProto:
    """The MLP (x [N, 64] -> 128 -> 64 -> 10 logits), trained with `CONFIGS["mlp"]`."""
    return train("mlp", split, seed=seed, epochs=epochs, verbose=verbose)


def train_cnn(
    split: DigitsSplit, *, seed: int = 0, epochs: int = CONFIGS["cnn"].epochs, verbose: bool = False
) -> onnx.ModelProto:
    """The CNN (x [N, 1, 8, 8] -> three 3x3 convs, a 2x2 max pool -> 10 logits), trained
    with `CONFIGS["cnn"]`."""
    return train("cnn", split, seed=seed, epochs=epochs, verbose=verbose)


def _kind_of(model: onnx.ModelProto) -> str:
    name = model.graph.name
    kind = name.removeprefix("digits_")
    if kind not in KINDS or name == kind:
        raise ValueError(f"not a digits model: graph {name!r}")
    return kind


def model_params(model: onnx.ModelProto) -> Params:
    """The weights of a digits model, by initializer name."""
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def numpy_logits(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The numpy forward pass (the one training uses) of a digits model on `x` (images
    [N, 1, 8, 8], or [N, 64] for the MLP)."""
    kind = _kind_of(model)
    return _logits_of_params(kind, model_params(model), x)


def with_batch(model: onnx.ModelProto, n: int) -> onnx.ModelProto:
    """A copy of `model` with the first (batch) dimension of its inputs, outputs and value
    infos fixed to `n`; checked with `onnx.checker.check_model`."""
    if n < 1:
        raise ValueError(f"batch must be positive, got {n}")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    g = fixed.graph
    for info in (*g.input, *g.output, *g.value_info):
        dims = info.type.tensor_type.shape.dim
        if dims:
            dims[0].dim_value = n  # clears dim_param (a oneof)
    onnx.checker.check_model(fixed, full_check=True)
    return fixed


# --- running and scoring --------------------------------------------------------------------


def _first(out: Any) -> np.ndarray:
    """The logits of a runner's result: an array, or the first of a list / tuple of them."""
    if isinstance(out, list | tuple):
        out = out[0]
    return np.asarray(out)


def batched_logits(run: Runner, x: np.ndarray, batch: int | None = None) -> np.ndarray:
    """The logits of `run` on all of `x`: in one call (`batch` None), or in calls of
    exactly `batch` rows (a fixed-batch model), the last padded with zeros."""
    if batch is None:
        return _first(run(x))
    parts = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        rows = len(chunk)
        if rows < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - rows, *x.shape[1:]), x.dtype)])
        parts.append(_first(run(np.ascontiguousarray(chunk)))[:rows])
    return np.concatenate(parts)


def accuracy(
    run: Runner, split: DigitsSplit, *, flat: bool = False, batch: int | None = None
) -> float:
    """Test accuracy of `run` (float32 inputs -> logits [N, 10], or a list / tuple whose
    first element is them) on `split`: images [N, 1, 8, 8] (`flat`: [N, 64]); `batch` as
    `batched_logits`."""
    x = flatten(split.x_test) if flat else split.x_test
    logits = batched_logits(run, x, batch)
    if logits.shape != (len(x), CLASSES):
        raise ValueError(f"logits of shape {logits.shape}, expected {(len(x), CLASSES)}")
    return float(np.mean(logits.argmax(1) == split.y_test))


def ort_runner(model: onnx.ModelProto, threads: int = 1) -> Runner:
    """onnxruntime (CPU, `threads` threads) running `model`: x -> logits."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"x": x})[0]

    return run


def mlc_runner(model: onnx.ModelProto, batch: int) -> Runner:
    """`mlc.compile` of `model` with its batch fixed to `batch`: x [batch, ...] -> logits."""
    compiled = mlc.compile(with_batch(model, batch))

    def run(x: np.ndarray) -> np.ndarray:
        return _first(compiled(x))

    return run


# --- the cache ------------------------------------------------------------------------------


def config_hash(kind: str, seed: int = 0) -> str:
    """16 hex digits naming the model that `train(kind, seed=seed)` trains: a hash of the
    training version, the architecture, the data split and the hyperparameters."""
    spec = {
        "version": TRAINING_VERSION,
        "kind": kind,
        "seed": seed,
        "arch": MLP_SIZES if kind == "mlp" else CNN_CHANNELS,
        "split": {"test_size": 0.25, "random_state": 0, "stratify": True, "scale": 16},
        "config": asdict(CONFIGS[kind]),
        "opset": OPSET,
    }
    text = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_digits_dir() -> Path:
    """`digits/` in mlc's cache directory (`$MLC_CACHE_DIR`, else `~/.cache/mlc`)."""
    return default_cache_dir() / "digits"


def _load_checked(path: Path) -> onnx.ModelProto | None:
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        _kind_of(model)
    except Exception:  # a truncated or foreign file: train again
        return None
    return model


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's files are private; a cached model is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_path(
    kind: str,
    cache_dir: Path | None = None,
    *,
    split: DigitsSplit | None = None,
    retrain: bool = False,
    verbose: bool = False,
) -> Path:
    """The path of the trained `kind` model ("mlp" or "cnn") with the default
    hyperparameters, `digits_<kind>_<config_hash>.onnx` in `cache_dir` (default
    `default_digits_dir()`); trained and written (atomically) only if it is not there
    yet, is unreadable, or `retrain`."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}: one of {KINDS}")
    root = Path(cache_dir) if cache_dir is not None else default_digits_dir()
    path = root / f"digits_{kind}_{config_hash(kind)}.onnx"
    if not retrain and path.exists() and _load_checked(path) is not None:
        return path
    model = train(kind, split or load_digits_split(), verbose=verbose)
    _write_atomic(path, model.SerializeToString())
    return path


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlc.benchmarks.digits", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="directory of the ONNX files (default: the cache)",
    )
    parser.add_argument("--models", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64], help="mlc batch sizes")
    parser.add_argument("--retrain", action="store_true", help="train even if cached")
    parser.add_argument("--no-mlc", action="store_true", help="onnxruntime only")
    args = parser.parse_args(argv)
    split = load_digits_split()
    print(f"digits: {len(split.y_train)} training, {len(split.y_test)} test images")
    status = 0
    for kind in args.models:
        path = model_path(kind, args.out, split=split, retrain=args.retrain, verbose=True)
        model = onnx.load(str(path))
        flat = kind == "mlp"
        x = flatten(split.x_test) if flat else split.x_test
        ort = ort_runner(model)
        ref = ort(x)
        print(f"{kind}: {path}")
        print(
            f"  numpy vs onnxruntime logits: max |diff| {np.abs(ref - numpy_logits(model, x)).max():.1e}"
        )
        print(f"  onnxruntime (1 thread): test accuracy {accuracy(ort, split, flat=flat):.4f}")
        if args.no_mlc:
            continue
        for n in args.batches:
            start = time.perf_counter()
            run = mlc_runner(model, n)
            compile_s = time.perf_counter() - start
            logits = batched_logits(run, x, n)
            acc = accuracy(run, split, flat=flat, batch=n)
            same = np.array_equal(logits.argmax(1), ref.argmax(1))
            print(
                f"  mlc batch {n}: test accuracy {acc:.4f}, max |diff| vs onnxruntime "
                f"{np.abs(logits - ref).max():.1e}, predictions "
                f"{'equal' if same else 'DIFFERENT'} (compiled in {compile_s:.1f} s)"
            )
            status |= not same
    return status


if __name__ == "__main__":
    raise SystemExit(main())
