"""Reference semantics of the hardware dialects (`hw.x86`), derived from the intrinsic
declarations: gather each input tile from its buffer (first-element index plus the op's
element strides), evaluate the declaration's tensor expression with numpy
(`Intrinsic.reference`), and add the result into the output tile (integers wrap)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from xdsl.dialects.builtin import MemRefType
from xdsl.interpreter import (
    Interpreter,
    InterpreterFunctions,
    PythonValues,
    impl,
    register_impls,
)
from xdsl.utils.exceptions import InterpretationError

from mlc.dialects.hw.intrinsics import semantics_of
from mlc.dialects.hw.x86 import FmaTileOp, HwTileOp, Vdpbf16psOp, VpdpbusdOp, VpmaddwdOp
from mlc.interpreters.tl.buffers import buffer_view, numpy_dtype

__all__ = ["HwFunctions", "run_hw_op"]


def _offsets(base: Sequence[int], shape: Sequence[int], strides: Sequence[int], buf: Any) -> Any:
    """Flat element offsets of a tile (an array of its shape)."""
    dims = list(np.shape(buf))
    flat_base = 0
    acc = 1
    for i, n in zip(reversed(list(base)), reversed(dims)):
        flat_base += int(i) * acc
        acc *= n
    offsets = np.full(tuple(shape), flat_base, dtype=np.int64)
    for d, (n, s) in enumerate(zip(shape, strides)):
        view = [1] * len(shape)
        view[d] = n
        offsets = offsets + (np.arange(n, dtype=np.int64) * s).reshape(view)
    if offsets.size and (offsets.min() < 0 or offsets.max() >= acc):
        raise InterpretationError(f"tile at {list(base)} leaves its buffer of shape {dims}")
    return offsets


def run_hw_op(op: HwTileOp, buffers: Sequence[Any], indices: Sequence[Sequence[int]]) -> None:
    """Execute `op` on `buffers` (C, A, B: `ShapedArray`s or numpy arrays) with the
    tiles' first-element `indices`."""
    intrinsic = semantics_of(op)
    sizes = op.sizes()
    shapes = intrinsic.shapes(sizes)
    strides = op.tile_strides()
    names = list(op.tiles())
    arrays: dict[str, np.ndarray] = {}
    views: dict[str, np.ndarray] = {}
    offsets: dict[str, np.ndarray] = {}
    for name, buf, base, value in zip(names, buffers, indices, op.tiles().values()):
        element = cast(MemRefType, value[0].type).element_type
        view = buffer_view(buf)
        flat = view.reshape(-1).view(numpy_dtype(element))
        off = _offsets(base, shapes[name], strides[name], view)
        views[name], offsets[name] = flat, off
        arrays[name] = flat[off]
    out = intrinsic.output
    result = intrinsic.reference({n: a for n, a in arrays.items() if n != out}, sizes)
    with np.errstate(over="ignore"):
        total = arrays[out] + result.astype(arrays[out].dtype)
    views[out][offsets[out]] = total


@register_impls
class HwFunctions(InterpreterFunctions):
    """`hw.x86` ops for xDSL's interpreter."""

    def _run(self, op: HwTileOp, args: PythonValues) -> PythonValues:
        values = list(args)
        tiles = op.tiles()
        ranks = [len(idx) for _, idx in tiles.values()]
        buffers: list[Any] = []
        indices: list[list[int]] = []
        pos = 0
        for rank in ranks:
            buffers.append(values[pos])
            indices.append([int(v) for v in values[pos + 1 : pos + 1 + rank]])
            pos += 1 + rank
        run_hw_op(op, buffers, indices)
        return ()

    @impl(VpdpbusdOp)
    def run_vpdpbusd(
        self, interpreter: Interpreter, op: VpdpbusdOp, args: PythonValues
    ) -> PythonValues:
        return self._run(op, args)

    @impl(Vdpbf16psOp)
    def run_vdpbf16ps(
        self, interpreter: Interpreter, op: Vdpbf16psOp, args: PythonValues
    ) -> PythonValues:
        return self._run(op, args)

    @impl(VpmaddwdOp)
    def run_vpmaddwd(
        self, interpreter: Interpreter, op: VpmaddwdOp, args: PythonValues
    ) -> PythonValues:
        return self._run(op, args)

    @impl(FmaTileOp)
    def run_fma_tile(
        self, interpreter: Interpreter, op: FmaTileOp, args: PythonValues
    ) -> PythonValues:
        return self._run(op, args)
