"""Source text of definitions and expressions (parseable back by `parse`). The printer
lives in `mlc.texpr.ast` (so that `str(definition)` needs no import of its own); this
module keeps its import path."""

from mlc.texpr.ast import format_definition, format_expr, format_statement

__all__ = ["format_definition", "format_expr", "format_statement"]
