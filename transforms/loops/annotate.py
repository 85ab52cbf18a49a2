"""Loop annotations: parallel, vectorize, unroll (they set a `tl.for`'s kind; the
interpreter runs every kind in order, code generation acts on them).

    tl.for %m = 0 to 8 { tl.block "s" ... at(m = %m) ... }

parallel / vectorize(8) / unroll(2) become

    tl.for %m = 0 to 8 parallel { ... }
    tl.for %m = 0 to 8 vectorize(8) { ... }
    tl.for %m = 0 to 8 unroll(2) { ... }
"""

from __future__ import annotations

from xdsl.dialects.builtin import IndexType, IntegerAttr, UnitAttr
from xdsl.ir import Attribute
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.tl import ForOp, LoopKind, LoopKindAttr, linear_form
from mlc.transforms.loops.common import ScheduleError, blocks_under, dims_of, loop_name

__all__ = ["parallel", "unroll", "vectorize"]


def _set_kind(
    loop: ForOp,
    kind: LoopKind,
    *,
    width: int | None = None,
    factor: int | None = None,
    masked: bool = False,
) -> dict[str, Attribute]:
    """Set the kind (and its parameters); return the old properties."""
    old = dict(loop.properties)
    props = {k: v for k, v in old.items() if k not in ("width", "factor", "masked")}
    props["kind"] = LoopKindAttr(kind)
    if width is not None:
        props["width"] = IntegerAttr(width, IndexType())
    if factor is not None:
        props["factor"] = IntegerAttr(factor, IndexType())
    if masked:
        props["masked"] = UnitAttr()
    loop.properties = props
    return old


def _check_independent(loop: ForOp, name: str, what: str) -> None:
    """No iteration of `loop` may depend on another: it binds no reduction iterator, and
    each iterator it binds indexes every output plainly (distinct iterations write
    distinct elements); the tl.for verifier checks the rest (blocks it does not index)."""
    iv = loop.induction_var
    for b in blocks_under(loop):
        label = b.label.data
        for d in sorted(dims_of(b, iv)):
            it = b.iterator_list[d]
            if it.is_reduction:
                raise ScheduleError(
                    f"cannot {what} loop '{name}': it is bound to reduction iterator "
                    f"'{it.label}' of tl.block \"{label}\""
                )
            for j, m in enumerate(b.output_maps):
                plain = False
                for e in m.results:
                    coeffs, atoms, _ = linear_form(e)
                    if not atoms and list(coeffs) == [d] and abs(coeffs[d]) == 1:
                        plain = True
                if not plain:
                    raise ScheduleError(
                        f"cannot {what} loop '{name}': different iterations may write the "
                        f'same element of output #{j} of tl.block "{label}" (iterator '
                        f"'{it.label}' is not one of its indices)"
                    )
    old = _set_kind(loop, LoopKind.PARALLEL)
    try:  # the parallel-loop verifier walks the body itself: the nested ops are unchanged
        loop.verify(verify_nested_ops=False)
    except VerifyException as e:
        raise ScheduleError(f"cannot {what} loop '{name}': {e}") from None
    finally:
        loop.properties = old


def parallel(loop: ForOp, name: str = "") -> None:
    """Mark `loop` parallel (rejected if it carries a reduction or a dependence)."""
    name = name or loop_name(loop)
    _check_independent(loop, name, "parallelize")
    _set_kind(loop, LoopKind.PARALLEL)


def vectorize(loop: ForOp, width: int | None = None, name: str = "") -> None:
    """Mark `loop` vectorize(width) (default: its trip count; a width that does not divide
    the trip count gives a masked loop). Rejected like `parallel`."""
    name = name or loop_name(loop)
    trip = loop.trip_count
    width = trip if width is None else width
    if width <= 0:
        raise ScheduleError(f"cannot vectorize loop '{name}': width must be positive, got {width}")
    _check_independent(loop, name, "vectorize")
    _set_kind(loop, LoopKind.VECTORIZE, width=width, masked=trip % width != 0)


def unroll(loop: ForOp, factor: int | None = None, name: str = "") -> None:
    """Mark `loop` unroll(factor) (default: its trip count, full unrolling)."""
    name = name or loop_name(loop)
    trip = loop.trip_count
    factor = trip if factor is None else factor
    if factor <= 0 or factor > max(trip, 1):
        raise ScheduleError(
            f"cannot unroll loop '{name}' by {factor}: the factor must be in [1, {trip}]"
        )
    _set_kind(loop, LoopKind.UNROLL, factor=factor)
