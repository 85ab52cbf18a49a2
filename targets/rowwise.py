"""Row-wise models: one compiled model per batch-size bucket, any batch size per call.

    model = compile_rowwise(estimator)            # or mlc.compile(estimator)
    model = compile_rowwise("forest.onnx")        # or mlc.compile(path, rowwise=True)
    label, probabilities = model(x)               # x: [n, features], any n

mlc compiles static shapes; converters give classic ML models (tree ensembles, linear
models) a symbolic batch dimension. When every row of every output depends on the same
row of the input only (the caller asserts it with `rowwise=True`; estimators are), the
model is compiled per *bucket*: a batch of `n <= block` rows runs in the smallest power
of two `>= n` (capped at `block`), its missing rows copies of its last row; a larger
batch runs in chunks of `block` rows (the last one in its own bucket), and the outputs
are sliced and concatenated. Buckets are compiled on first use and kept; the persistent
compile cache keeps their object code across processes (a bucket compiled before only
links). `x` is checked (rank, feature count, dtype) before native code runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from mlc.parser.estimators import EstimatorError, is_estimator, to_onnx_model
from mlc.parser.onnx.importer import load_model
from mlc.targets.compiled import CompiledModel, InvalidInputError, compile_model

__all__ = ["DEFAULT_BLOCK", "RowwiseModel", "bucket_size", "compile_rowwise"]

#: the most rows one compiled bucket runs (larger batches run in chunks of it)
DEFAULT_BLOCK = 1024


def bucket_size(rows: int, block: int = DEFAULT_BLOCK) -> int:
    """The compiled batch size that runs `rows` rows (`1 <= rows`): the smallest power of
    two `>= rows`, at most `block`."""
    if rows < 1:
        raise ValueError(f"a bucket holds at least one row, got {rows}")
    return min(1 << (rows - 1).bit_length(), block)


class RowwiseModel:
    """An ONNX model of independent rows with a symbolic batch dimension, compiled per
    batch-size bucket (see the module docstring); `model(x)` returns the outputs for
    any number of rows. `options` go to every bucket's `compile_model`."""

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | onnx.ModelProto,
        *,
        block: int = DEFAULT_BLOCK,
        base_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        if options.get("input_shapes"):
            raise ValueError("a row-wise model chooses its input shape: do not pass input_shapes")
        options.pop("input_shapes", None)
        self.source = source
        self.block = block
        self.base_dir = base_dir
        self.options = options
        self.input_name, self.n_features, self.dtype = _input_signature(source, base_dir)
        self._buckets: dict[int, CompiledModel] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"RowwiseModel({self.input_name}: {self.dtype}[n, {self.n_features}], "
            f"block={self.block}, buckets={sorted(self._buckets)})"
        )

    @property
    def buckets(self) -> dict[int, CompiledModel]:
        """The buckets compiled so far: batch size -> compiled model."""
        return dict(self._buckets)

    def bucket(self, rows: int) -> int:
        """The batch size `rows` rows (at most `block`) run in."""
        return bucket_size(rows, self.block)

    def compiled(self, size: int) -> CompiledModel:
        """The model compiled for batches of exactly `size` rows (compiled now if it is
        not yet)."""
        with self._lock:
            found = self._buckets.get(size)
            if found is None:
                found = self._compile(size)
                self._buckets[size] = found
            return found

    def _compile(self, size: int) -> CompiledModel:
        shapes = {self.input_name: [size, self.n_features]}
        model = compile_model(
            self.source, input_shapes=shapes, base_dir=self.base_dir, **self.options
        )
        for spec in model.outputs:
            if not spec.shape or spec.shape[0] != size:
                raise ValueError(
                    f"output '{spec.name or '?'}' of a batch of {size} rows has shape "
                    f"{list(spec.shape)}: its first dimension is not the batch, so the model "
                    "is not row-wise"
                )
        return model

    def check(self, x: Any) -> np.ndarray:
        """`x` as an array of `[rows, n_features]` of the model's dtype, or
        `InvalidInputError` (a `ValueError`) saying what is wrong."""
        array = np.asarray(x)
        expected = f"{self.dtype}[rows, {self.n_features}]"
        if array.ndim != 2:
            raise InvalidInputError(
                f"input '{self.input_name}' must be 2-D ({expected}), got {array.ndim}-D "
                f"shape {list(array.shape)}"
                + (": pass x.reshape(1, -1) for one row" if array.ndim == 1 else "")
            )
        if array.shape[1] != self.n_features:
            raise InvalidInputError(
                f"input '{self.input_name}' must have {self.n_features} features per row "
                f"({expected}), got {array.shape[1]}"
            )
        if array.dtype != self.dtype:
            raise InvalidInputError(
                f"input '{self.input_name}' must have dtype {self.dtype} ({expected}), got "
                f"{array.dtype}: pass x.astype(np.{self.dtype})"
            )
        return array

    def __call__(self, x: Any) -> list[Any]:
        """The outputs for the rows of `x` (a list, one array per model output)."""
        array = self.check(x)
        rows = array.shape[0]
        if rows == 0:
            return [out[:0] for out in self._run(np.zeros((1, self.n_features), self.dtype))]
        chunks = [self._run(array[i : i + self.block]) for i in range(0, rows, self.block)]
        if len(chunks) == 1:
            return chunks[0]
        return [_concatenate(parts) for parts in zip(*chunks)]

    def _run(self, rows: np.ndarray) -> list[np.ndarray]:
        """The outputs for at most `block` rows, padded to their bucket."""
        n = rows.shape[0]
        size = self.bucket(n)
        model = self.compiled(size)
        if n == size:
            return model(np.ascontiguousarray(rows))
        padded = np.empty((size, self.n_features), self.dtype)
        padded[:n] = rows
        padded[n:] = rows[-1]  # copies of a real row: valid input for any model
        return [out[:n] for out in model(padded)]


def _concatenate(parts: Sequence[Any]) -> Any:
    """Chunks of one output: arrays, or lists (a ZipMap's dicts)."""
    if isinstance(parts[0], list):
        return [row for part in parts for row in part]
    return np.concatenate(parts)


def _input_signature(
    source: str | os.PathLike[str] | bytes | onnx.ModelProto,
    base_dir: str | os.PathLike[str] | None,
) -> tuple[str, int, np.dtype]:
    """(name, feature count, dtype) of the model's one input, `[batch, features]`."""
    proto = load_model(source, base_dir)
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"a row-wise model has one input, this one has {len(inputs)}")
    info = inputs[0]
    tensor = info.type.tensor_type
    dims = list(tensor.shape.dim) if info.type.HasField("tensor_type") else []
    if len(dims) != 2 or not dims[1].HasField("dim_value") or dims[1].dim_value < 1:
        raise ValueError(
            f"the input '{info.name}' of a row-wise model must be [batch, features] with a "
            "static feature count"
        )
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"input '{info.name}' has an unsupported element type") from None
    return info.name, int(dims[1].dim_value), dtype


def compile_rowwise(
    model: Any, *, block: int = DEFAULT_BLOCK, n_features: int | None = None, **options: Any
) -> RowwiseModel:
    """A `RowwiseModel` of an ONNX model (path, bytes, ModelProto) whose rows are
    independent, or of a fitted estimator (`mlc.parser.estimators.to_onnx_model`;
    `n_features` as there). `options`: `compile_model`'s, for every bucket."""
    if is_estimator(model):
        model = to_onnx_model(model, n_features).SerializeToString()
    elif n_features is not None:
        raise ValueError("n_features is for estimators; an ONNX model declares its features")
    elif not isinstance(model, str | os.PathLike | bytes | onnx.ModelProto):
        kind = type(model).__name__
        if kind == "ModuleOp":
            raise ValueError("a module has static shapes: row-wise compiles ONNX models")
        raise EstimatorError(f"cannot compile a {kind} row-wise: give an ONNX model or estimator")
    return RowwiseModel(model, block=block, **options)
