"""Entry points: text -> checked `Definition`."""

from __future__ import annotations

from functools import lru_cache

from lark import Tree

from mlc.texpr.ast import Definition
from mlc.texpr.bounds import check_bounds
from mlc.texpr.check import build_definition
from mlc.texpr.errors import TexprError
from mlc.texpr.grammar import parse_tree


def parse_all(text: str) -> dict[str, Definition]:
    """Every definition of ``text``, by name, each type- and bounds-checked."""
    return {d.name: d for d in _parse_all(text)}


@lru_cache(maxsize=1024)
def _parse_all(text: str) -> tuple[Definition, ...]:
    """Definitions are immutable, so parsing the same text twice returns the same objects."""
    tree = parse_tree(text)
    result: dict[str, Definition] = {}
    for node in tree.children:
        assert isinstance(node, Tree)
        defn = build_definition(node)
        if defn.name in result:
            raise TexprError(f"`{defn.name}` is defined twice", node.meta.line, node.meta.column)
        check_bounds(defn)
        result[defn.name] = defn
    return tuple(result.values())


def parse(text: str) -> Definition:
    """The single definition of ``text``, type- and bounds-checked.

    Raises `TexprError` (``line:col: message``) on syntax, type and bounds errors.
    """
    definitions = parse_all(text)
    if len(definitions) != 1:
        raise TexprError(f"expected one definition, found {len(definitions)}; use parse_all")
    return next(iter(definitions.values()))
