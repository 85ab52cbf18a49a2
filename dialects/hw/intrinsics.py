"""Tensor intrinsics: one declaration per hardware instruction (or register-tile
microkernel) — its semantics as a tensor expression, the CPU features it needs, the
stride constraints on its operands, the hw op it becomes and a cost. The declaration is
the spec, the matcher's pattern (`mlc.transforms.loops.tensorize`, through
`lowering.texpr_to_tl.intrinsic_kernel`) and the test oracle (the hw op's interpreter
evaluates the same expression). The declarations live with their hw ops
(`dialects/hw/x86_intrinsics.py`, `dialects/hw/accel_intrinsics.py`); the schedules that
place them are the targets' (`targets/x86.py`).

    register_intrinsic(Intrinsic(
        name="x86.avx512.vpdpbusd",
        source="vpdpbusd<L>(A: u8[4], B: i8[L, 4]) -> C: i32[L] "
               "{ C[j] += i32(A[k]) * i32(B[j, k]) }",
        op=VpdpbusdOp,
        build=build_broadcast_dot,
        features=frozenset({"avx512vnni"}),
        sizes=(("L", 16),),
        strides=(("A", (1,)), ("B", (4, 1)), ("C", (1,))),
        cost=1.0,
    ))

Conventions:

* The expression's one statement is a reduction `C[...] += ...` into the output; the hw op
  *accumulates* into its output tile (the reduction's identity init is not part of it).
* `sizes` fixes sizes of the expression; the others (`fma_tile`'s MR, NR, K) are bound by
  the matcher from the tile's extents and checked by `check_sizes`.
* `strides`: per tensor, the required element stride of each of its dims in the buffer
  (`None`: any stride, which the hw op then carries as a property).
* Unsigned element types (`u8`) live in signless buffers (`i8`); their reads are
  zero-extended in kernel bodies (`arith.extui`, `arith.uitofp`), see
  `lowering.texpr_to_tl.intrinsic_kernel`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from xdsl.ir import Operation, SSAValue

from mlc.texpr import (
    Definition,
    evaluate,
    numpy_dtype,
    parse,
    specialize,
)

if TYPE_CHECKING:
    from mlc.dialects.hw.x86 import HwTileOp

__all__ = [
    "Intrinsic",
    "IntrinsicError",
    "TileOperand",
    "get_intrinsic",
    "has_features",
    "intrinsics",
    "register_intrinsic",
    "semantics_of",
]

#: target name -> module declaring its intrinsics (imported on first use)
TARGET_MODULES: dict[str, str] = {
    "x86": "mlc.dialects.hw.x86_intrinsics",
    "accel": "mlc.dialects.hw.accel_intrinsics",
}


class IntrinsicError(ValueError):
    """A bad declaration or a request the registry cannot satisfy."""


@dataclass(frozen=True)
class TileOperand:
    """What a builder gets per tensor of the semantics: the buffer, the index of the
    tile's first element (index values) and the element stride of each tensor dim."""

    buffer: SSAValue
    indices: tuple[SSAValue, ...]
    strides: tuple[int, ...]


#: builder: (intrinsic, tiles by tensor name, bound sizes) -> the hw op
Builder = Callable[["Intrinsic", Mapping[str, TileOperand], Mapping[str, int]], Operation]


@dataclass(frozen=True)
class Intrinsic:
    """One declared intrinsic (see the module docstring)."""

    name: str
    source: str
    op: type[Operation]
    build: Builder = field(compare=False)
    features: frozenset[str] = frozenset()
    sizes: tuple[tuple[str, int], ...] = ()
    strides: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    cost: float = 1.0
    target: str = "x86"
    #: extra checks of bound sizes: returns why they are not accepted, or None
    check_sizes: Callable[[Mapping[str, int]], str | None] | None = field(
        default=None, compare=False
    )

    @property
    def definition(self) -> Definition:
        """The parsed expression (sizes still symbolic)."""
        return _parse(self.source)

    @property
    def fixed_sizes(self) -> dict[str, int]:
        return dict(self.sizes)

    def stride_spec(self, tensor: str) -> tuple[int | None, ...]:
        """Required element stride per dim of `tensor` (`None`: free)."""
        for name, spec in self.strides:
            if name == tensor:
                return spec
        rank = len(self.definition.tensor(tensor).shape)
        return (None,) * rank

    def supported_by(self, features: object) -> bool:
        """Whether a CPU with `features` (a `HostFeatures` or a set of names) runs it."""
        return has_features(features, self.features)

    def specialized(self, sizes: Mapping[str, int]) -> Definition:
        return _specialize(self.source, tuple(sorted({**self.fixed_sizes, **sizes}.items())))

    def shapes(self, sizes: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
        defn = self.specialized(sizes)
        return {
            d.name: tuple(s.const_value() for s in d.shape) for d in (*defn.inputs, *defn.outputs)
        }

    def reference(self, arrays: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> np.ndarray:
        """The output the expression computes from `arrays` (inputs by tensor name;
        unsigned tensors may be passed with the signless dtype: they are reinterpreted)."""
        defn = self.specialized(sizes)
        args: dict[str, Any] = {}
        for decl in defn.inputs:
            args[decl.name] = np.asarray(arrays[decl.name]).view(numpy_dtype(decl.dtype))
        (out,) = evaluate(defn, **args).values()
        return out

    @property
    def output(self) -> str:
        return self.definition.outputs[0].name


@cache
def _parse(source: str) -> Definition:
    defn = parse(source)
    if len(defn.statements) != 1 or len(defn.outputs) != 1 or defn.locals:
        raise IntrinsicError(f"`{defn.name}`: an intrinsic is one statement with one output")
    if defn.statements[0].op != "+=":
        raise IntrinsicError(f"`{defn.name}`: an intrinsic accumulates (`+=`) into its output")
    return defn


@cache
def _specialize(source: str, sizes: tuple[tuple[str, int], ...]) -> Definition:
    return specialize(_parse(source), dict(sizes))


# ------------------------------------------------------------------ the registry

_REGISTRY: dict[str, Intrinsic] = {}


def register_intrinsic(intrinsic: Intrinsic) -> Intrinsic:
    """Add `intrinsic` (its expression is parsed and checked now)."""
    if intrinsic.name in _REGISTRY and _REGISTRY[intrinsic.name] != intrinsic:
        raise IntrinsicError(f"intrinsic '{intrinsic.name}' is already registered")
    defn = intrinsic.definition
    names = {d.name for d in (*defn.inputs, *defn.outputs)}
    for tensor, spec in intrinsic.strides:
        if tensor not in names:
            raise IntrinsicError(f"{intrinsic.name}: stride constraint on unknown `{tensor}`")
        if len(spec) != len(defn.tensor(tensor).shape):
            raise IntrinsicError(f"{intrinsic.name}: `{tensor}` needs one stride per dim")
    _REGISTRY[intrinsic.name] = intrinsic
    return intrinsic


def _load(target: str | None) -> None:
    for name, module in TARGET_MODULES.items():
        if target is None or target == name:
            importlib.import_module(module)


def intrinsics(target: str | None = None, features: object | None = None) -> list[Intrinsic]:
    """Registered intrinsics of `target` (all targets: None), those a CPU with
    `features` supports only when given; cheapest first."""
    _load(target)
    found = [i for i in _REGISTRY.values() if target is None or i.target == target]
    if features is not None:
        found = [i for i in found if i.supported_by(features)]
    return sorted(found, key=lambda i: (i.cost, i.name))


def get_intrinsic(name: str) -> Intrinsic:
    _load(None)
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise IntrinsicError(f"unknown intrinsic '{name}' (known: {known})")
    return _REGISTRY[name]


def semantics_of(op: HwTileOp | type[Operation]) -> Intrinsic:
    """The declaration whose expression is the semantics of a hw op (any intrinsic of
    the op's class: they share the expression and differ in sizes / features)."""
    cls = op if isinstance(op, type) else type(op)
    _load(None)
    for intrinsic in _REGISTRY.values():
        if intrinsic.op is cls:
            return intrinsic
    raise IntrinsicError(f"no intrinsic declares the semantics of {cls.__name__}")


def has_features(features: object, required: Sequence[str] | frozenset[str]) -> bool:
    """Whether `features` (a `HostFeatures`, a `+a,-b` string or a set of names) has all
    of `required`."""
    if isinstance(features, str):
        have = {f[1:] for f in features.split(",") if f.startswith("+")}
    elif isinstance(features, set | frozenset | list | tuple):
        have = set(features)
    else:
        text = getattr(features, "features", "")
        have = {f[1:] for f in str(text).split(",") if f.startswith("+")}
        for flag in ("avx2", "fma", "avx512f", "avx512vnni", "avx512bf16"):
            if getattr(features, flag, False):
                have.add(flag)
    return all(r in have for r in required)
