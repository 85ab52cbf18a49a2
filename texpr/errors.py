"""The one exception type of the tensor-expression language."""

from __future__ import annotations


class TexprError(Exception):
    """A syntax, type, bounds or evaluation error in a tensor expression.

    ``line`` and ``column`` are 1-based and ``None`` when the error has no
    source position (for example a wrong input shape at evaluation time).
    The message is one line; when a position is known it starts with
    ``line:col:``.
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        self.detail = message
        prefix = f"{line}:{column}: " if line is not None and column is not None else ""
        super().__init__(prefix + message)


class Loc:
    """A source position (1-based line and column); ignored by AST equality."""

    __slots__ = ("line", "column")

    def __init__(self, line: int, column: int) -> None:
        self.line = line
        self.column = column

    def error(self, message: str) -> TexprError:
        """A `TexprError` at this position."""
        return TexprError(message, self.line, self.column)

    def __repr__(self) -> str:
        return f"Loc({self.line}, {self.column})"


def error_at(loc: Loc | None, message: str) -> TexprError:
    """A `TexprError` at ``loc`` when it is known."""
    return loc.error(message) if loc is not None else TexprError(message)
