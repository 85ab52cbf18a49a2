"""The xDSL context that knows every dialect: xDSL's own and mlc's."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects import get_all_dialects

from mlc.registry import all_dialect_factories


def make_context(allow_unregistered: bool = False) -> Context:
    ctx = Context(allow_unregistered=allow_unregistered)
    for name, factory in get_all_dialects().items():
        ctx.register_dialect(name, factory)
    for name, factory in all_dialect_factories().items():
        ctx.register_dialect(name, factory)
    return ctx
