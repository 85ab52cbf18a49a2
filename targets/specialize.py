"""Models with dynamic input dimensions: one `mlc.compile` for every input shape, a
compiled specialization per distinct binding of the dimensions.

    model = mlc.compile("bert.onnx")          # inputs [batch, seq, 768], [batch, 1, 1, seq]
    (y,) = model(x, mask)                     # compiled for x's (batch, seq) on first use
    model = mlc.compile("bert.onnx", specialize={"batch": [1], "seq": [128, 512]})

mlc's kernels have static shapes, so an ONNX model whose graph inputs have `dim_param`s
or unknown dimensions compiles to a `SpecializingModel`:

- each input dimension is static, a named symbol (a `dim_param`: the same name is the same
  size in every input) or unnamed (a symbol of its own, `<input>[<axis>]`);
- a call binds the symbols from the arrays' shapes, checking the number of inputs, their
  dtypes and ranks, the static dimensions and that a symbol has one size
  (`InvalidInputError` before any native code runs);
- it runs the model compiled for that binding (`compile_model` with `input_shapes`),
  compiling it on first use; the persistent compile cache makes a shape compiled before,
  in any process, a link. At most `max_specializations` stay loaded (least recently used
  dropped).

This is not yet one shape-polymorphic binary: every new shape pays a compile (issue #17).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from mlc.parser.onnx.importer import load_model
from mlc.targets.compiled import (
    DEFAULT_MAX_SPECIALIZATIONS,
    CompiledModel,
    InvalidInputError,
    compile_model,
)

__all__ = ["DEFAULT_MAX_SPECIALIZATIONS", "InputSignature", "SpecializingModel", "signature"]

Binding = tuple[tuple[str, int], ...]
"""Symbol -> size, sorted by symbol: the key of a specialization."""


@dataclass(frozen=True)
class InputSignature:
    """A graph input: its name, dtype and dimensions (an int, or a symbol's name)."""

    name: str
    dtype: np.dtype
    dims: tuple[int | str, ...]

    def describe(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.dims)}]"


def signature(proto: onnx.ModelProto) -> list[InputSignature]:
    """The model's graph inputs (initializers excepted) with their symbolic dimensions."""
    initializers = {t.name for t in proto.graph.initializer}
    found = []
    for info in proto.graph.input:
        if info.name in initializers:
            continue
        tensor = info.type.tensor_type
        if not info.type.HasField("tensor_type") or not tensor.HasField("shape"):
            raise ValueError(f"input '{info.name}' has no tensor shape to specialize")
        dims: list[int | str] = []
        for axis, d in enumerate(tensor.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or f"{info.name}[{axis}]")
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        found.append(InputSignature(info.name, dtype, tuple(dims)))
    return found


class SpecializingModel:
    """An ONNX model with dynamic input dimensions, compiled per binding of them (see the
    module docstring). `options` go to every specialization's `compile_model`."""

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes | onnx.ModelProto,
        *,
        specialize: Mapping[str, Sequence[int]] | None = None,
        max_specializations: int = DEFAULT_MAX_SPECIALIZATIONS,
        base_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> None:
        if max_specializations < 1:
            raise ValueError(f"max_specializations must be >= 1, got {max_specializations}")
        if options.pop("input_shapes", None):
            raise ValueError("a specializing model chooses its input shapes per call")
        self.source = source
        self.base_dir = base_dir
        self.options = options
        self.max_specializations = max_specializations
        self.inputs = signature(load_model(source, base_dir))
        self.symbols = sorted({d for i in self.inputs for d in i.dims if isinstance(d, str)})
        self._loaded: OrderedDict[Binding, CompiledModel] = OrderedDict()
        self._lock = threading.Lock()
        for binding in _bindings(specialize or {}, self.symbols):
            self.compiled(**dict(binding))

    def __repr__(self) -> str:
        inputs = ", ".join(i.describe() for i in self.inputs)
        return f"SpecializingModel({inputs}; {len(self._loaded)} specialization(s) loaded)"

    @property
    def specializations(self) -> list[dict[str, int]]:
        """The bindings loaded now, least recently used first."""
        return [dict(b) for b in self._loaded]

    def shapes(self, **sizes: int) -> dict[str, list[int]]:
        """Every input's shape under `sizes` (a size for every symbol)."""
        _check_names(sizes, self.symbols, "give a size")
        return {
            i.name: [sizes[d] if isinstance(d, str) else d for d in i.dims] for i in self.inputs
        }

    def compiled(self, **sizes: int) -> CompiledModel:
        """The model compiled for `sizes` (compiled now if it is not loaded), e.g. to
        profile or export that specialization."""
        shapes = self.shapes(**sizes)
        binding = tuple(sorted((s, int(v)) for s, v in sizes.items()))
        with self._lock:
            found = self._loaded.get(binding)
            if found is None:
                found = compile_model(
                    self.source, input_shapes=shapes, base_dir=self.base_dir, **self.options
                )
                self._loaded[binding] = found
                while len(self._loaded) > self.max_specializations:
                    self._loaded.popitem(last=False)
            else:
                self._loaded.move_to_end(binding)
            return found

    def bind(self, arrays: Sequence[Any]) -> dict[str, int]:
        """The symbols' sizes in `arrays`, or `InvalidInputError` saying what does not fit."""
        if len(arrays) != len(self.inputs):
            expected = ", ".join(i.describe() for i in self.inputs)
            raise InvalidInputError(
                f"expected {len(self.inputs)} input(s) ({expected}), got {len(arrays)}"
            )
        sizes: dict[str, int] = {}
        where: dict[str, str] = {}
        for spec, array in zip(self.inputs, arrays):
            a = np.asarray(array)
            if a.dtype != spec.dtype:
                raise InvalidInputError(
                    f"input '{spec.name}' must have dtype {spec.dtype}, got {a.dtype}"
                )
            if a.ndim != len(spec.dims):
                raise InvalidInputError(
                    f"input '{spec.name}' must be {len(spec.dims)}-D ({spec.describe()}), "
                    f"got shape {list(a.shape)}"
                )
            for axis, (dim, n) in enumerate(zip(spec.dims, a.shape)):
                at = f"input '{spec.name}' axis {axis}"
                if isinstance(dim, int):
                    if n != dim:
                        raise InvalidInputError(f"{at} must be {dim} ({spec.describe()}), got {n}")
                elif n < 1:
                    raise InvalidInputError(f"{at} ('{dim}') must be at least 1, got {n}")
                elif sizes.setdefault(dim, n) != n:
                    raise InvalidInputError(
                        f"dimension '{dim}' is {sizes[dim]} in {where[dim]} but {n} in {at}"
                    )
                else:
                    where.setdefault(dim, at)
        return sizes

    def __call__(self, *arrays: Any) -> list[Any]:
        """The outputs for `arrays` (a list, one array per model output)."""
        return self.compiled(**self.bind(arrays))(*arrays)


def _check_names(given: Mapping[str, Any], symbols: Sequence[str], what: str) -> None:
    """`ValueError` unless `given` names exactly the model's `symbols`."""
    missing = [s for s in symbols if s not in given]
    unknown = [s for s in given if s not in symbols]
    if missing or unknown:
        raise ValueError(
            f"{what} for each of {list(symbols)}"
            + (f"; missing {missing}" if missing else "")
            + (f"; not a dimension of this model: {unknown}" if unknown else "")
        )


def _bindings(specialize: Mapping[str, Sequence[int]], symbols: Sequence[str]) -> list[Binding]:
    """Every combination of the sizes `specialize` lists (it must name every symbol)."""
    if not specialize:
        return []
    _check_names(specialize, symbols, "specialize= needs sizes")
    names = sorted(specialize)
    combos = itertools.product(*(list(specialize[n]) for n in names))
    return [tuple(zip(names, (int(v) for v in combo))) for combo in combos]
