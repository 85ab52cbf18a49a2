"""The Lark grammar of the tensor-expression language and syntax-error translation."""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from mlc.texpr.errors import TexprError

GRAMMAR = r"""
start: definition+

definition: NAME size_params? "(" [params] ")" "->" outputs "{" statement* "}"
size_params: "<" size_param ("," size_param)* ">"
size_param: NAME ["=" SIGNED_INT]
params: param ("," param)*
param: NAME ":" NAME "[" [dims] "]"
dims: sum ("," sum)*
outputs: param | "(" params ")"

statement: access ASSIGN_OP expr where_clause? ";"?
// `=` never followed by `=`: after an indexed read (`A[i] == B[i]`) both assignment and
// comparison operators are acceptable to the contextual lexer, and `==` is a comparison.
// Priority 2: `max=` beats NAME `max` (a name may start the next statement).
ASSIGN_OP.2: /(\+|\*|max|min)?=(?!=)/
where_clause: "where" range ("," range)*
range: NAME "in" sum ".." sum

?expr: or_expr
     | or_expr "if" "in" "bounds" "else" expr -> guarded
?or_expr: and_expr
        | or_expr "or" and_expr -> or_op
?and_expr: not_expr
         | and_expr "and" not_expr -> and_op
?not_expr: comparison
         | "not" not_expr -> not_op
?comparison: sum
           | sum COMPARE_OP sum -> compare
?sum: product
    | sum ADD_OP product -> binary
?product: unary
        | product MUL_OP unary -> binary
?unary: atom
      | "-" unary -> neg
?atom: INT -> int_lit
     | FLOAT -> float_lit
     | NAME -> name
     | access
     | call
     | "(" expr ")"
access: NAME "[" [args] "]"
call: NAME "(" [args] ")"
args: expr ("," expr)*

COMPARE_OP: "<=" | ">=" | "==" | "!=" | "<" | ">"
ADD_OP: "+" | "-"
MUL_OP: "*" | "/" | "%"
FLOAT.2: /\d+\.\d+([eE][+-]?\d+)?/ | /\d+[eE][+-]?\d+/
INT: /\d+/
SIGNED_INT: /-?\d+/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
COMMENT: /#[^\n]*/

%import common.WS
%ignore WS
%ignore COMMENT
"""

#: Friendly names of terminals in "expected ..." messages.
_TERMINAL_NAMES: dict[str, str] = {
    "NAME": "a name",
    "INT": "a number",
    "SIGNED_INT": "an integer",
    "FLOAT": "a number",
    "ASSIGN_OP": "`=`, `+=`, `*=`, `max=` or `min=`",
    "COMPARE_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*`, `/` or `%`",
    "$END": "end of input",
}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True)


def parse_tree(text: str) -> Tree[Token]:
    """The Lark parse tree of ``text``; syntax errors raise a one-line `TexprError`."""
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None


def _describe(name: str) -> str:
    if name in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[name]
    try:
        pattern = _parser().get_terminal(name).pattern.value
    except KeyError:
        return name.lower()
    return f"`{pattern}`"


def _expected(names: set[str]) -> str:
    described = sorted({_describe(n) for n in names})
    if not described:
        return ""
    if len(described) == 1:
        return f"; expected {described[0]}"
    return "; expected " + ", ".join(described[:-1]) + " or " + described[-1]


def _syntax_error(exc: UnexpectedInput, text: str) -> TexprError:
    if isinstance(exc, UnexpectedEOF):
        line = text.count("\n") + 1
        column = len(text) - (text.rfind("\n") + 1) + 1
        return TexprError("unexpected end of input" + _expected(set(exc.expected)), line, column)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            line = text.count("\n") + 1
            column = len(text) - (text.rfind("\n") + 1) + 1
            found = "end of input"
        else:
            line, column = token.line, token.column
            found = f"`{token}`"
        expected = set(exc.accepts or exc.expected)
        return TexprError(f"unexpected {found}" + _expected(expected), line, column)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else "?"
        return TexprError(f"unexpected character `{char}`", exc.line, exc.column)
    return TexprError(str(exc).splitlines()[0])
