"""xDSL's MLIR lexer with a string-literal rule that runs in linear time.

xDSL 0.74 matches a string literal with `"(?:[^"\\\n\v\f]+|\\(?:...))*"`: on a string
that is never closed (or holds a bad escape) the nested quantifiers backtrack through
every way of splitting its characters, so `"aaaa...` of 30 characters takes minutes. The
same language with possessive quantifiers cannot backtrack; a string that does not match
is reported with the reason (unclosed on its line, a bad escape) at its opening quote.
"""

from __future__ import annotations

import re

from xdsl.utils.exceptions import ParseError
from xdsl.utils.lexer import Position, Span
from xdsl.utils.mlir_lexer import MLIRLexer, MLIRToken

_STRING_BODY = r'"(?:[^"\\\n\v\f]++|\\(?:["nt\\]|[0-9A-Fa-f]{2}))*+'
"""A string literal up to (not including) its closing quote; matches without backtracking."""


class LinearTimeLexer(MLIRLexer):
    """An `MLIRLexer` whose string literals lex in linear time."""

    _unescaped_characters_regex = re.compile(_STRING_BODY + '"')
    _string_prefix_regex = re.compile(_STRING_BODY)

    def _lex_string_literal(self, start_pos: Position) -> MLIRToken:
        if self._unescaped_characters_regex.match(self.input.content, start_pos) is None:
            raise self._bad_string(start_pos)
        return super()._lex_string_literal(start_pos)

    def _bad_string(self, start_pos: Position) -> ParseError:
        """The error for the string literal at `start_pos`, which does not match."""
        content = self.input.content
        prefix = self._string_prefix_regex.match(content, start_pos)
        stop = prefix.end() if prefix is not None else start_pos + 1
        if stop >= len(content):
            reason = "unterminated string literal: the input ends before its closing '\"'"
        elif content[stop] == "\\":
            escape = content[stop : stop + 2].rstrip("\n")
            reason = (
                f"invalid escape sequence '{escape}' in string literal (write \\n, \\t, "
                '\\\\, \\" or two hex digits)'
            )
        else:
            reason = "unterminated string literal: a string must end with '\"' on its own line"
        return ParseError(Span(start_pos, start_pos + 1, self.input), reason)
