"""Fault injection: how many small faults in mlc's rewrites do the property tests catch?

    python -m mlc.tools.mutate --sample 40 --seed 0 [--jobs 2] [--timeout 300]

(the command line is `mlc.tools.mutate`; this module is the library it runs)

The tool reads the source of the modules implementing registered passes and patterns
(`TARGETS`), enumerates mutation sites of four fault kinds with `ast`:

- ``swap-operands``: the two operands of a non-commutative binary operator (``a - b``),
  of an ordering comparison (``a < b``) or of a call with two positional arguments;
- ``off-by-one``: an integer constant ``n`` becomes ``n + 1``; ``<`` <-> ``<=``,
  ``>`` <-> ``>=``;
- ``wrong-identity``: an init / identity / pad value (a float constant, an infinity, an
  argument named like ``init``, ``identity(...)``) is replaced by a different value;
- ``drop-init``: a statement that sets up an init is deleted (replaced by ``pass``);

and seven kinds of the faults the generic operators rarely make (`CORNER_KINDS`), each
found where the code emits or decides that thing:

- ``floor-to-trunc``: a floor division / modulo rounded toward zero instead: an emitted
  ``arith.floordivsi`` made ``arith.divsi``; a ``*floor*`` function emitting
  ``sdiv`` / ``srem`` returns them uncorrected; Python ``//``, ``%``, ``divmod`` where
  a function folds affine floordiv / mod (not divisibility tests or exact divisions);
- ``drop-remainder``: the loop emitted from where the main (unrolled / vector) loop
  ends is deleted;
- ``tail-lane``: a masked tail's lane count (``active``, ``n % width``) or a last-lane
  offset (``width - 1``) one short;
- ``nan-minmax``: a NaN-propagating min / max made the non-propagating one
  (``"maximum"`` -> ``"maxnum"``, ``arith.MaximumfOp`` -> ``arith.MaxnumfOp``);
- ``skip-guard``: ``if <predicate / pad / bounds / mask test>:`` whose body refuses
  (raise, return None / False) or emits the check (a conditional branch, a bounds test,
  a select) made ``if False:``; also the early refusals of functions so named
  (``predicate_bound``, ``in_bounds``);
- ``identity-map``: an index map's composition dropped (``m.compose(b)`` /
  ``e.replace_dims_and_symbols(s, ...)`` -> ``m``), or a permutation applied as the
  identity (``for p, d in enumerate(w): at[d] = r[p]`` -> ``at[p]``);
- ``wrong-stride``: a stride one too large (``c * row[d]``, ``fb.mul(k, sb_k)``, the
  ``kb * {group}`` of a packing kernel's map);

draws a seeded sample (round-robin over the kinds) and runs, per mutant, in a
subprocess, the property tests that ``@covers`` a registered pass or pattern whose
implementation imports the mutated module (`mlc.testing.coverage.covered_names` + the
registry; modules a pass imports by name, `HW_LOWERING_MODULES`, count as imported). The mutated file is never written into the tree: a small import hook in the
subprocess executes the mutated source in place of the module. Each mutant is

- ``killed``: a covering test fails;
- ``survived``: every covering test passes;
- ``timeout``: the tests ran past ``--timeout`` (counted as caught: the fault hangs);
- ``invalid``: the mutated module does not import / compile (not counted);
- ``equivalent``: survived, and reviewed as not changing the program's meaning (listed
  with the reason in `KNOWN_EQUIVALENT`; not counted).

The report lists every survivor as ``file:line kind: description`` and the fraction
caught = (killed + timeout) / (killed + timeout + survived), plus the raw fraction that
counts equivalent mutants as not caught. Exit status 0 when the fraction caught reaches
``--target`` (default 0.9), 1 otherwise.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mlc.registry import all_pass_factories, all_rewrite_patterns
from mlc.testing.coverage import covered_names

#: the package root (the repository root is the package `mlc`)
ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"

#: source files (relative to ROOT, globs allowed) implementing registered passes/patterns
TARGETS: tuple[str, ...] = (
    "lowering/tl_kernel_to_loops.py",
    "lowering/graph_to_tl.py",
    "lowering/texpr_to_tl.py",
    "transforms/loops/*.py",
    "lowering/*_to_llvm.py",
    "lowering/llvm_builder.py",
)

#: the generic operators, found everywhere
GENERIC_KINDS: tuple[str, ...] = ("swap-operands", "off-by-one", "wrong-identity", "drop-init")
#: fault classes of index arithmetic, loop code generation and legality checks (issue #22),
#: each found where the code emits or decides that thing (see `_corner_sites`)
CORNER_KINDS: tuple[str, ...] = (
    "floor-to-trunc",
    "drop-remainder",
    "tail-lane",
    "nan-minmax",
    "skip-guard",
    "identity-map",
    "wrong-stride",
)
FAULT_KINDS: tuple[str, ...] = GENERIC_KINDS + CORNER_KINDS

# binary operators whose operands cannot be swapped without changing the meaning
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)
_ORDERING = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_OFF_BY_ONE = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">"}
# calls whose argument swap is a type error at once or a no-op: not interesting faults
_SKIP_CALLS = {"isinstance", "issubclass", "getattr", "hasattr", "setattr", "min", "max", "zip"}
_INIT_WORD = re.compile(r"(?<![A-Za-z_])(init|inits|init_values?|identity|pad|pads|pad_values?)\b")
_INIT_TEXT = re.compile(r"init(?!__)|identity", re.IGNORECASE)
_WRONG = "__mlc_mutant_wrong__"

# appended to a module mutated with a wrong-identity fault (after all original lines, so
# line numbers stay as they are)
_WRONG_HELPER = f"""

def {_WRONG}(v):  # mlc.testing.mutate: a different value of the same kind
    from xdsl.dialects.builtin import ArrayAttr, FloatAttr, IntegerAttr
    if v is None:
        return None
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return 1 if v == 0 else 0
    if isinstance(v, float):
        return 1.0 if v == 0 else 0.0
    if isinstance(v, IntegerAttr):
        return IntegerAttr(1 if v.value.data == 0 else 0, v.type)
    if isinstance(v, FloatAttr):
        return FloatAttr(1.0 if v.value.data == 0 else 0.0, v.type)
    if isinstance(v, ArrayAttr):
        return ArrayAttr([{_WRONG}(x) for x in v.data])
    if isinstance(v, (list, tuple)):
        return type(v)({_WRONG}(x) for x in v)
    if hasattr(v, "value") and isinstance(getattr(v, "value"), (int, float)):
        import dataclasses
        if dataclasses.is_dataclass(v):
            return dataclasses.replace(v, value={_WRONG}(v.value))
    return v
"""


_TRUNC = "__mlc_mutant_trunc__"

# appended to a module mutated with a Python-level floor-to-trunc fault
_TRUNC_HELPER = f"""

def {_TRUNC}(a, b, op):  # mlc.testing.mutate: `//`, `%`, divmod rounding toward zero
    if not (isinstance(a, int) and isinstance(b, int)) or b == 0:
        return a // b if op == "//" else a % b if op == "%" else divmod(a, b)
    q = abs(a) // abs(b)
    if (a < 0) != (b < 0):
        q = -q
    r = a - q * b
    return q if op == "//" else r if op == "%" else (q, r)
"""


#: Surviving mutants reviewed as equivalent (the program keeps its meaning), keyed by
#: (path, description): a survivor listed here is reported as ``equivalent`` and left out
#: of the fraction. Keep the reason; remove an entry when the code changes.
KNOWN_EQUIVALENT: dict[tuple[str, str], str] = {
    (
        "lowering/texpr_to_tl.py",
        "arith.AndIOp(cond, c) -> arith.AndIOp(c, cond)",
    ): "and is commutative",
    (
        "lowering/graph_to_tl.py",
        "s > 0 -> 0 > s",
    ): "unreachable: _simplify serves lower_reshape, never selected (the expression library "
    "lowers reshape and dropout)",
    (
        "lowering/graph_to_tl.py",
        "0 -> 1",
    ): "unreachable: _simplify serves lower_reshape, never selected (the expression library "
    "lowers reshape and dropout)",
    (
        "transforms/loops/buffers.py",
        "argument inits of zip(...) -> other value",
    ): "decompose_reduction's loop reads only `init is not None`; the values come from `inits`",
    (
        "transforms/loops/buffers.py",
        "0 -> 1",
    ): "decompose_reduction: the constant replaces non-parallel dims in conditions that use "
    "parallel dims only",
    (
        "lowering/texpr_to_tl.py",
        "0 -> 1",
    ): "poly_to_affine `den <= 0` -> `den <= 1`: normalized polynomials have no division by 1",
    (
        "transforms/loops/fusion.py",
        "e.replace_dims_and_symbols(at, ...) -> e",
    ): "_same_points only ever refuses an in-place epilogue: comparing a side without "
    "zeroing extent-1 iterators can only refuse more of them (zeroing is idempotent), so "
    "fewer rewrites, never a wrong one",
}


@dataclass(frozen=True)
class Mutation:
    """One fault at one site: replace the source between (line, col) and
    (end_line, end_col) (1-based lines, 0-based UTF-8 byte columns, as `ast` reports
    them) by `replacement`."""

    path: str  # relative to ROOT
    line: int
    col: int
    end_line: int
    end_col: int
    kind: str
    description: str
    replacement: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def _span(self, data: bytes) -> tuple[int, int]:
        lines = data.splitlines(keepends=True)
        start = sum(len(x) for x in lines[: self.line - 1]) + self.col
        end = sum(len(x) for x in lines[: self.end_line - 1]) + self.end_col
        return start, end

    def original(self, source: str) -> str:
        """The source text this mutation replaces."""
        data = source.encode()
        start, end = self._span(data)
        return data[start:end].decode()

    def apply(self, source: str) -> str:
        """The mutated source (line numbers unchanged)."""
        data = source.encode()
        start, end = self._span(data)
        text = (data[:start] + self.replacement.encode() + data[end:]).decode()
        if _WRONG in self.replacement:
            text += _WRONG_HELPER
        if _TRUNC in self.replacement:
            text += _TRUNC_HELPER
        return text


@dataclass
class Outcome:
    mutation: Mutation
    status: str  # killed | survived | timeout | invalid
    seconds: float
    detail: str = ""


# --------------------------------------------------------------------------- sites


def _excluded_ranges(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges where faults are not interesting: docstrings, raise statements (error
    messages), annotations, `__all__`, `if TYPE_CHECKING:` imports."""
    out: list[tuple[int, int]] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            out.append((body[0].lineno, body[0].end_lineno or body[0].lineno))
        if isinstance(node, ast.Raise | ast.Import | ast.ImportFrom | ast.Assert):
            out.append((node.lineno, node.end_lineno or node.lineno))
        if isinstance(node, ast.If) and any(
            isinstance(n, ast.Name | ast.Attribute)
            and getattr(n, "id", getattr(n, "attr", "")) == "TYPE_CHECKING"
            for n in ast.walk(node.test)
        ):
            out.append((node.lineno, node.end_lineno or node.lineno))
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            out.append((node.lineno, node.end_lineno or node.lineno))
    return out


def _no_mutate_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes inside annotations, f-strings and decorators."""
    skip: set[int] = set()

    def mark(n: ast.AST | None) -> None:
        if n is not None:
            skip.update(id(x) for x in ast.walk(n))

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            mark(node)
        elif isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        elif isinstance(node, ast.arg):
            mark(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for d in node.decorator_list:
                mark(d)
        elif isinstance(node, ast.ClassDef):
            for d in node.decorator_list:
                mark(d)
            for b in node.bases:
                mark(b)
    return skip


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def _is_inf(node: ast.AST | None) -> bool:
    """`inf`, `math.inf`, `np.inf`, `float("inf")`, negated or not."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    if isinstance(node, ast.Name):
        return node.id == "inf"
    if isinstance(node, ast.Attribute):
        return node.attr == "inf"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "float"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).lstrip("+-").lower() in ("inf", "infinity")
    )


class _Segments:
    """`ast.get_source_segment` for many nodes of one source: the lines are split once
    (the library function splits the whole source again on every call: most of the time
    of collecting every site)."""

    def __init__(self, source: str) -> None:
        self.lines: list[bytes] = []
        start = 0
        for m in re.finditer(r"\r\n|\r|\n", source):  # as ast's splitting: no form feeds
            self.lines.append(source[start : m.end()].encode())
            start = m.end()
        if start < len(source):
            self.lines.append(source[start:].encode())

    def of(self, node: ast.AST) -> str:
        first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        start, end = node.col_offset, node.end_col_offset
        if first == last:
            return self.lines[first][start:end].decode()
        middle = b"".join(self.lines[first + 1 : last])
        return (self.lines[first][start:] + middle + self.lines[last][:end]).decode()


def find_sites(path: Path, root: Path = ROOT) -> list[Mutation]:
    """Every mutation site of the fault kinds in the Python file `path`."""
    source = path.read_text()
    tree = ast.parse(source, str(path))
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    excluded = _excluded_ranges(tree)
    skip = _no_mutate_nodes(tree)

    segments = _Segments(source)

    def seg(n: ast.AST) -> str:
        return segments.of(n)

    def pseg(n: ast.AST) -> str:  # for descriptions: parenthesized where needed
        compound = ast.BinOp | ast.BoolOp | ast.Compare | ast.IfExp | ast.UnaryOp | ast.Lambda
        return f"({seg(n)})" if isinstance(n, compound) else seg(n)

    def ok(n: ast.AST) -> bool:
        if id(n) in skip or not hasattr(n, "lineno"):
            return False
        return not any(a <= n.lineno <= b for a, b in excluded)

    out: list[Mutation] = []

    def add(n: ast.AST, kind: str, description: str, replacement: str) -> None:
        out.append(
            Mutation(
                rel,
                n.lineno,
                n.col_offset,
                n.end_lineno or n.lineno,
                n.end_col_offset or 0,
                kind,
                description,
                replacement,
            )
        )

    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node

    for node in ast.walk(tree):
        if not ok(node):
            continue
        # ------------------------------------------------------------ swap-operands
        if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE):
            left, right = seg(node.left), seg(node.right)
            if left != right:
                op = _binop(node.op)
                pl, pr = pseg(node.left), pseg(node.right)
                add(
                    node,
                    "swap-operands",
                    f"{pl} {op} {pr} -> {pr} {op} {pl}",
                    f"(({right}) {_binop(node.op)} ({left}))",
                )
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and type(node.ops[0]) in _ORDERING
            and not isinstance(node.left, ast.Constant)
        ):
            left, right = seg(node.left), seg(node.comparators[0])
            sym = _ORDERING[type(node.ops[0])]
            if left != right:
                add(
                    node,
                    "swap-operands",
                    f"{left} {sym} {right} -> {right} {sym} {left}",
                    f"(({right}) {sym} ({left}))",
                )
        if (
            isinstance(node, ast.Call)
            and len(node.args) == 2
            and not any(isinstance(a, ast.Starred) for a in node.args)
            and _call_name(node) not in _SKIP_CALLS
        ):
            a, b = seg(node.args[0]), seg(node.args[1])
            if a != b:
                func = seg(node.func)
                kw = "".join(f", {seg(k)}" for k in node.keywords)
                add(
                    node,
                    "swap-operands",
                    f"{func}({a}, {b}) -> {func}({b}, {a})",
                    f"{func}(({b}), ({a}){kw})",
                )
        # ------------------------------------------------------------ off-by-one
        if (
            isinstance(node, ast.Constant)
            and type(node.value) is int
            and not isinstance(parents.get(id(node)), ast.UnaryOp)
        ):
            add(node, "off-by-one", f"{node.value} -> {node.value + 1}", f"{node.value + 1}")
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and type(node.ops[0]) in _OFF_BY_ONE
        ):
            left, right = seg(node.left), seg(node.comparators[0])
            sym, new = _ORDERING[type(node.ops[0])], _OFF_BY_ONE[type(node.ops[0])]
            add(node, "off-by-one", f"{left} {sym} {right} -> {new}", f"(({left}) {new} ({right}))")
        # ------------------------------------------------------------ wrong-identity
        if isinstance(node, ast.Constant) and type(node.value) is float:
            add(node, "wrong-identity", f"{node.value!r} -> other value", f"{_WRONG}({seg(node)})")
        elif isinstance(node, ast.expr) and _is_inf(node):
            parent = parents.get(id(node))
            if not (isinstance(parent, ast.UnaryOp) or _is_inf_part(node, parent)):
                add(node, "wrong-identity", f"{seg(node)} -> 0.0", "0.0")
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "identity":
                add(node, "wrong-identity", f"{seg(node)} -> other value", f"{_WRONG}({seg(node)})")
            else:
                args = [*node.args, *(k.value for k in node.keywords)]
                for arg in args:
                    if (
                        ok(arg)
                        and isinstance(arg, ast.Name | ast.Attribute | ast.Subscript)
                        and _INIT_WORD.search(seg(arg))
                    ):
                        add(
                            arg,
                            "wrong-identity",
                            f"argument {seg(arg)} of {seg(node.func)}(...) -> other value",
                            f"{_WRONG}({seg(arg)})",
                        )
        # ------------------------------------------------------------ drop-init
        if isinstance(node, ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign):
            text = seg(node)
            if _INIT_TEXT.search(text) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            ):
                first = text.splitlines()[0]
                more = " ..." if "\n" in text else ""
                add(node, "drop-init", f"delete `{first}{more}`", "pass")
    _corner_sites(tree, source, ok, seg, parents, add)
    # drop duplicates (same span and replacement), keep a stable order
    unique = {(m.line, m.col, m.end_line, m.end_col, m.replacement): m for m in out}
    return sorted(unique.values(), key=lambda m: (m.line, m.col, m.kind, m.replacement))


# ------------------------------------------------------------------------ corner kinds

#: words naming a guard: a predicate, a pad or bounds check, a lane mask
_GUARD_WORD = re.compile(
    r"(?<![A-Za-z])(pred|predicate|predicates|pad|pads|pad_values|mask|masks|guard|bounds|holds)"
    r"(?![A-Za-z])"
)
#: calls that emit a guard's check or branch
_GUARD_CALLS = {"CondBrOp", "in_bounds", "icmp", "SelectOp", "select", "clamp"}
#: names of a stride (element distance between neighbours along a dim)
_STRIDE_NAME = re.compile(r"^(strides?|row|group|panel|s[abc]_[a-z]+)$")
#: lane counts of a vector block's tail
_ACTIVE = {"active"}
_WIDTH = {"width", "lanes", "w"}
_NAN_MINMAX = {"maximum": "maxnum", "minimum": "minnum", "fmaximum": "fmax", "fminimum": "fmin"}
_NAN_MINMAX_OPS = {"MaximumfOp": "MaxnumfOp", "MinimumfOp": "MinnumfOp"}
_LOOP_EMITTERS = {"serial_loop", "loop", "vector_body", "unrolled"}


def _name_of(node: ast.AST) -> str:
    """The identifier a Name / Attribute / Subscript ends with (`a.b[c]` -> `b`)."""
    while isinstance(node, ast.Subscript):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _functions(tree: ast.Module) -> Iterable[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _enclosing(
    node: ast.AST, parents: dict[int, ast.AST], kind: type | tuple[type, ...]
) -> ast.AST | None:
    p = parents.get(id(node))
    while p is not None and not isinstance(p, kind):
        p = parents.get(id(p))
    return p


def _ancestors(node: ast.AST, parents: dict[int, ast.AST]) -> Iterable[ast.AST]:
    p = parents.get(id(node))
    while p is not None:
        yield p
        p = parents.get(id(p))


def _mentions_affine_divmod(fn: ast.AST) -> bool:
    """`fn` dispatches on affine floordiv / mod (so its Python `//` and `%` fold them)."""
    return any(
        isinstance(n, ast.Attribute)
        and n.attr in ("FloorDiv", "Mod", "CeilDiv")
        and _name_of(n.value) == "AffineBinaryOpKind"
        for n in ast.walk(fn)
    )


def _is_zero_test(node: ast.AST, parent: ast.AST | None) -> bool:
    """`x % c == 0`, `x % c != 0`, `if x % c:`: a divisibility test (rounding does not
    change it)."""
    if isinstance(parent, ast.Compare) and len(parent.ops) == 1:
        other = parent.comparators[0] if parent.left is node else parent.left
        return isinstance(other, ast.Constant) and other.value == 0
    if isinstance(parent, ast.If | ast.IfExp | ast.While) and parent.test is node:
        return True
    return isinstance(parent, ast.BoolOp)


def _exact_division(
    node: ast.BinOp, parents: dict[int, ast.AST], seg: Callable[[ast.AST], str]
) -> bool:
    """`a // b` under a test `a % b == 0` (or `... != 0` else-branch): exact, whatever the
    rounding."""
    want = f"{seg(node.left)} % {seg(node.right)}"
    child: ast.AST = node
    for p in _ancestors(node, parents):
        if isinstance(p, ast.If | ast.IfExp):
            in_body = child in (p.body if isinstance(p.body, list) else [p.body])
            test = seg(p.test)
            if in_body and test.replace(" ", "") == f"{want} == 0".replace(" ", ""):
                return True
            if in_body and test.replace(" ", "") == f"not {want}".replace(" ", ""):
                return True
        child = p
    return False


def _rebuilds_affine(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    """`return lhs // rhs` under `if e.kind == AffineBinaryOpKind.FloorDiv:`: an affine
    expression rebuilt from its parts, not integer arithmetic."""
    parent = parents.get(id(node))
    if not isinstance(parent, ast.Return):
        return False
    branch = _enclosing(parent, parents, ast.If)
    return branch is not None and _mentions_affine_divmod(branch.test)


def _corner_sites(
    tree: ast.Module,
    source: str,
    ok: Callable[[ast.AST], bool],
    seg: Callable[[ast.AST], str],
    parents: dict[int, ast.AST],
    add: Callable[[ast.AST, str, str, str], None],
) -> None:
    """The sites of `CORNER_KINDS` (see the module docstring)."""
    emit = add

    def add(node: ast.AST, kind: str, description: str, replacement: str) -> None:
        # an expression spanning lines keeps them (in parentheses): line numbers stay
        lines = (getattr(node, "end_lineno", None) or node.lineno) - node.lineno  # type: ignore[attr-defined]
        missing = lines - replacement.count("\n")
        if missing > 0 and isinstance(node, ast.expr):
            replacement = f"({replacement}{chr(10) * missing})"
        emit(node, kind, description, replacement)

    for fn in _functions(tree):
        _floor_functions(fn, ok, seg, add)
        _remainder_loops(fn, ok, seg, add)
        if _mentions_affine_divmod(fn):
            for node in ast.walk(fn):
                if not ok(node) or _enclosing(node, parents, ast.FunctionDef) is not fn:
                    continue
                parent = parents.get(id(node))
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv | ast.Mod):
                    op = "//" if isinstance(node.op, ast.FloorDiv) else "%"
                    if (
                        (op == "%" and _is_zero_test(node, parent))
                        or (op == "//" and _exact_division(node, parents, seg))
                        or _rebuilds_affine(node, parents)
                    ):
                        continue
                    a, b = seg(node.left), seg(node.right)
                    add(
                        node,
                        "floor-to-trunc",
                        f"{a} {op} {b} -> rounded toward zero",
                        f'{_TRUNC}(({a}), ({b}), "{op}")',
                    )
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "divmod"
                    and len(node.args) == 2
                ):
                    a, b = seg(node.args[0]), seg(node.args[1])
                    add(
                        node,
                        "floor-to-trunc",
                        f"divmod({a}, {b}) -> rounded toward zero",
                        f'{_TRUNC}(({a}), ({b}), "divmod")',
                    )
    for node in ast.walk(tree):
        if not ok(node):
            continue
        parent = parents.get(id(node))
        # ------------------------------------------------------------ floor-to-trunc (IR)
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "FloorDivSIOp"
            and not (isinstance(parent, ast.Dict) and node in parent.keys)
            and not isinstance(parent, ast.Tuple | ast.List | ast.Set)
        ):
            base = seg(node.value)
            add(node, "floor-to-trunc", f"{seg(node)} -> {base}.DivSIOp", f"{base}.DivSIOp")
        # ------------------------------------------------------------ nan-minmax
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in _NAN_MINMAX
            and isinstance(parent, ast.Call)
        ):
            new = _NAN_MINMAX[node.value]
            add(node, "nan-minmax", f'"{node.value}" -> "{new}"', f'"{new}"')
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _NAN_MINMAX_OPS
        ):
            f = node.func
            new = _NAN_MINMAX_OPS[f.attr]
            add(f, "nan-minmax", f"{seg(f)}(...) -> {new}", f"{seg(f.value)}.{new}")
        # ------------------------------------------------------------ tail-lane
        if (
            isinstance(node, ast.Name)
            and node.id in _ACTIVE
            and isinstance(node.ctx, ast.Load)
            and (
                (
                    isinstance(parent, ast.Compare)
                    and not any(isinstance(o, ast.Is | ast.IsNot) for o in parent.ops)
                )
                or (isinstance(parent, ast.IfExp) and node is not parent.test)
                or (isinstance(parent, ast.Call) and _call_name(parent) == "range")
            )
        ):
            add(
                node,
                "tail-lane",
                f"{node.id} -> {node.id} - 1 (one lane short)",
                f"({node.id} - 1)",
            )
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and _name_of(node.right) in _WIDTH
            and isinstance(parent, ast.Call)
            and node in parent.args
        ):
            add(
                node,
                "tail-lane",
                f"{seg(node)} -> {seg(node)} - 1 (one lane short)",
                f"({seg(node)} - 1)",
            )
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Sub)
            and isinstance(node.left, ast.Name)
            and node.left.id == "width"
            and isinstance(node.right, ast.Constant)
            and node.right.value == 1
            and not _bit_width(node, parents, seg)
        ):
            w = seg(node.left)
            add(node, "tail-lane", f"{w} - 1 -> {w} - 2 (the last lane one short)", f"({w} - 2)")
        # ------------------------------------------------------------ skip-guard
        if isinstance(node, ast.If) and _is_guard(node, fn_name=_fn_name(node, parents), seg=seg):
            add(
                node.test,
                "skip-guard",
                f"if {seg(node.test).splitlines()[0]} -> if False",
                "False",
            )
        # ------------------------------------------------------------ identity-map
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("compose", "replace_dims_and_symbols")
            and node.args
        ):
            receiver = seg(node.func.value)
            add(
                node,
                "identity-map",
                f"{receiver}.{node.func.attr}({seg(node.args[0])}, ...) -> {receiver}",
                f"({receiver})",
            )
        if isinstance(node, ast.For):
            _permutation_sites(node, ok, seg, add)
        # ------------------------------------------------------------ wrong-stride
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            for operand in (node.left, node.right):
                if _STRIDE_NAME.match(_name_of(operand)) and not isinstance(operand, ast.Constant):
                    s = seg(operand)
                    add(operand, "wrong-stride", f"* {s} -> * ({s} + 1)", f"({s} + 1)")
        if (
            isinstance(node, ast.Call)
            and _call_name(node) == "mul"
            and len(node.args) == 2
            and _STRIDE_NAME.match(_name_of(node.args[1]))
        ):
            s = seg(node.args[1])
            add(node.args[1], "wrong-stride", f"mul(..., {s}) -> ({s} + 1)", f"({s} + 1)")
    # strides spelled inside f-strings (`f"kb * {group} + g, n"`, a copy kernel's map)
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr) or not hasattr(node, "lineno"):
            continue
        if any(a <= node.lineno <= b for a, b in _excluded_ranges(tree)):
            continue
        parts = node.values
        for before, value in zip(parts, parts[1:]):
            if (
                isinstance(before, ast.Constant)
                and isinstance(before.value, str)
                and before.value.rstrip().endswith("*")
                and isinstance(value, ast.FormattedValue)
                and _STRIDE_NAME.match(_name_of(value.value))
            ):
                s = seg(value.value)
                add(value.value, "wrong-stride", f"* {{{s}}} -> * {{{s} + 1}}", f"{s} + 1")


def _bit_width(node: ast.AST, parents: dict[int, ast.AST], seg: Callable[[ast.AST], str]) -> bool:
    """`width` in `node`'s function is an integer type's bit width (`x.width.data`)."""
    fn = _enclosing(node, parents, ast.FunctionDef | ast.AsyncFunctionDef)
    return fn is not None and any(
        isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "width" for t in n.targets)
        and ".width" in seg(n.value)
        for n in ast.walk(fn)
    )


def _fn_name(node: ast.AST, parents: dict[int, ast.AST]) -> str:
    fn = _enclosing(node, parents, ast.FunctionDef | ast.AsyncFunctionDef)
    return getattr(fn, "name", "")


def _is_guard(node: ast.If, fn_name: str, seg: Callable[[ast.AST], str]) -> bool:
    """`node` enforces a guard: its test names a predicate / pad / bounds / mask (or it
    sits in a function so named) and its body refuses (raise, return None / False) or
    emits the check (a conditional branch, a bounds test, a select)."""
    test = node.test
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Is)
        and isinstance(test.comparators[0], ast.Constant)
    ):
        return False  # `if mask is None:`: the path without a guard
    named = _GUARD_WORD.search(seg(test)) is not None
    in_guard_fn = _GUARD_WORD.search(fn_name.replace("_", " ")) is not None
    if not (named or in_guard_fn):
        return False
    refuses = False
    emits = False
    for stmt in node.body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Raise):
                refuses = True
            elif isinstance(n, ast.Return) and (
                n.value is None
                or (isinstance(n.value, ast.Constant) and n.value.value in (None, False))
                or (  # `return constant(b, 0, i1)`: a check that fails
                    isinstance(n.value, ast.Call)
                    and _call_name(n.value) == "constant"
                    and any(isinstance(a, ast.Constant) and a.value == 0 for a in n.value.args)
                )
            ):
                refuses = refuses or n is stmt or stmt is node.body[-1]
            elif isinstance(n, ast.Call) and _call_name(n) in _GUARD_CALLS:
                emits = True
    if named:
        return refuses or emits
    return refuses  # in a guard function: its early refusals


def _permutation_sites(
    loop: ast.For,
    ok: Callable[[ast.AST], bool],
    seg: Callable[[ast.AST], str],
    add: Callable[[ast.AST, str, str, str], None],
) -> None:
    """`for a, b in enumerate(p): T[b] = V[a]`: a permutation applied; the mutant uses one
    index on both sides (as if `p` were the identity)."""
    target = loop.target
    if not (
        isinstance(target, ast.Tuple)
        and len(target.elts) == 2
        and all(isinstance(e, ast.Name) for e in target.elts)
        and isinstance(loop.iter, ast.Call)
        and _call_name(loop.iter) == "enumerate"
    ):
        return
    a, b = (cast_name(e) for e in target.elts)
    for stmt in loop.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and ok(stmt)):
            continue
        lhs, rhs = stmt.targets[0], stmt.value
        if not (isinstance(lhs, ast.Subscript) and isinstance(rhs, ast.Subscript)):
            continue
        li, ri = seg(lhs.slice), seg(rhs.slice)
        if {li, ri} == {a, b}:
            add(
                lhs.slice,
                "identity-map",
                f"{seg(lhs)} = {seg(rhs)} -> {seg(lhs.value)}[{ri}] (identity permutation)",
                ri,
            )


def cast_name(node: ast.expr) -> str:
    assert isinstance(node, ast.Name)
    return node.id


def _floor_functions(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    ok: Callable[[ast.AST], bool],
    seg: Callable[[ast.AST], str],
    add: Callable[[ast.AST, str, str, str], None],
) -> None:
    """A function named `*floor*` emitting a truncating `SDivOp` and `SRemOp` and then
    correcting them toward -inf: the mutant returns right after the two, uncorrected."""
    if "floor" not in fn.name:
        return
    names: dict[str, str] = {}
    last: ast.stmt | None = None
    for stmt in fn.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            text = seg(stmt.value)
            for op in ("SDivOp", "SRemOp"):
                if f"{op}(" in text and op not in names:
                    names[op] = stmt.targets[0].id
                    last = stmt
    returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return) and n.value is not None]
    if len(names) != 2 or last is None or not returns or not ok(last) or "\n" in seg(last):
        return
    pair = isinstance(returns[-1].value, ast.Tuple)
    value = f"{names['SDivOp']}, {names['SRemOp']}" if pair else names["SDivOp"]
    add(
        last,
        "floor-to-trunc",
        f"{fn.name}: return the truncating {value} (no rounding toward -inf)",
        f"{seg(last)}; return {value}",
    )


def _remainder_loops(
    fn: ast.FunctionDef | ast.AsyncFunctionDef,
    ok: Callable[[ast.AST], bool],
    seg: Callable[[ast.AST], str],
    add: Callable[[ast.AST, str, str, str], None],
) -> None:
    """A loop emitted from where the main loop before it ends (`loop(lb, END, ...)` then
    `loop(END, ...)`, or `tail = END` and a statement emitting from `tail`): the
    remainder. The mutant deletes that statement."""
    body = fn.body
    for i, stmt in enumerate(body):
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (
            isinstance(call, ast.Call)
            and _call_name(call) in _LOOP_EMITTERS
            and len(call.args) >= 2
        ):
            continue
        end = seg(call.args[1]).replace(" ", "")
        starts = {end}
        for later in body[i + 1 :]:
            if (
                isinstance(later, ast.Assign)
                and len(later.targets) == 1
                and isinstance(later.targets[0], ast.Name)
                and seg(later.value).replace(" ", "") == end
            ):
                starts.add(later.targets[0].id)
                continue
            emits = [
                n
                for n in ast.walk(later)
                if isinstance(n, ast.Call)
                and _call_name(n) in _LOOP_EMITTERS
                and n.args
                and seg(n.args[0]).replace(" ", "") in starts
            ]
            if emits and ok(later):
                first = seg(later).splitlines()[0]
                more = " ..." if "\n" in seg(later) else ""
                lines = (later.end_lineno or later.lineno) - later.lineno
                add(later, "drop-remainder", f"delete `{first}{more}`", "pass" + "\n" * lines)
            break


def _is_inf_part(node: ast.expr, parent: ast.AST | None) -> bool:
    # `inf` inside `np.inf` / `float("inf")`: only the outer expression is a site
    return isinstance(parent, ast.Attribute | ast.Call) and _is_inf(parent)


def _binop(op: ast.operator) -> str:
    return {
        ast.Sub: "-",
        ast.Div: "/",
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.Pow: "**",
        ast.LShift: "<<",
        ast.RShift: ">>",
    }[type(op)]


def target_files(root: Path = ROOT, targets: Iterable[str] = TARGETS) -> list[Path]:
    files: list[Path] = []
    for pattern in targets:
        files.extend(p for p in sorted(root.glob(pattern)) if p.name != "__init__.py")
    return files


def all_sites(root: Path = ROOT, targets: Iterable[str] = TARGETS) -> list[Mutation]:
    return [m for path in target_files(root, targets) for m in find_sites(path, root)]


def sample(sites: Sequence[Mutation], n: int, seed: int) -> list[Mutation]:
    """A deterministic sample of `n` sites, round-robin over the fault kinds (each kind's
    sites shuffled with `seed`), so every kind is represented."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Mutation]] = {}
    for m in sites:
        by_kind.setdefault(m.kind, []).append(m)
    for kind in by_kind:
        rng.shuffle(by_kind[kind])
    queues = [by_kind[k] for k in FAULT_KINDS if k in by_kind]
    out: list[Mutation] = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


# --------------------------------------------------------------------------- test selection


def _module_file(name: str, root: Path) -> Path | None:
    if name != "mlc" and not name.startswith("mlc."):
        return None
    parts = name.split(".")[1:]
    base = root.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


@functools.cache
def _imports(path: Path, root: Path) -> frozenset[Path]:
    """The mlc source files `path` imports (absolute `mlc.` and relative imports)."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(root).with_suffix("").parts
    package = ["mlc", *rel[:-1]] if path.name != "__init__.py" else ["mlc", *rel[:-1]]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            names.append(mod)
            names.extend(f"{mod}.{a.name}" for a in node.names)  # submodule imports
        elif (  # modules imported by name at run time (`HW_LOWERING_MODULES = ("mlc....",)`)
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(t, ast.Name) and t.id.endswith("_MODULES")
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            and node.value is not None
        ):
            names.extend(
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    found = {f for n in names if (f := _module_file(n, root)) is not None}
    found.discard(path)
    return frozenset(found)


def _closure(start: Path, root: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [start]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(_imports(p, root) - seen)
    return seen


@functools.cache
def implementing_files(root: Path = ROOT) -> dict[str, set[Path]]:
    """Registered pass / pattern name -> the mlc source files its implementation imports
    (transitively)."""
    import importlib

    out: dict[str, set[Path]] = {}
    for name, factory in {**all_pass_factories(), **all_rewrite_patterns()}.items():
        cls = factory()
        module = importlib.import_module(cls.__module__)
        out[name] = _closure(Path(module.__file__ or "").resolve(), root.resolve())
    return out


def covering_tests(path: Path, root: Path = ROOT, tests: Path = TESTS) -> list[str]:
    """pytest node ids of the `@covers` property tests of every registered pass or pattern
    whose implementation imports `path`."""
    covered = covered_names(tests)
    files = {p.name: p for p in tests.rglob("test_*.py")}
    ids: list[str] = []
    for name, impl in implementing_files(root).items():
        if path.resolve() not in impl:
            continue
        for entry in covered.get(name, []):
            file, fn = entry.split("::")
            node = f"{files[file]}::{fn}"
            if node not in ids:
                ids.append(node)
    return ids


# --------------------------------------------------------------------------- running

# Runs pytest with one module replaced by mutated source: argv = [spec.json, *pytest args].
# Deliberately imports nothing from mlc before the hook is installed.
_BOOTSTRAP = r"""
import importlib.abc, importlib.util, json, sys
spec = json.load(open(sys.argv[1]))
class _Loader(importlib.abc.Loader):
    def create_module(self, s):
        return None
    def exec_module(self, module):
        code = compile(spec["source"], spec["file"], "exec")
        exec(code, module.__dict__)
class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != spec["module"]:
            return None
        return importlib.util.spec_from_file_location(name, spec["file"], loader=_Loader())
if spec["module"]:
    sys.meta_path.insert(0, _Finder())
    try:
        importlib.import_module(spec["module"])
    except Exception as e:
        print(f"MUTANT-INVALID: {type(e).__name__}: {e}")
        sys.exit(99)
import pytest
sys.exit(pytest.main(sys.argv[2:]))
"""

INVALID = 99


# where a generic description ("0 -> 1") needs the text before the site to tell sites apart
_EQUIVALENT_PREFIX: dict[tuple[str, str], tuple[str, ...]] = {
    ("lowering/graph_to_tl.py", "0 -> 1"): ("strict=True) if s > ", "ranges = {n: ("),
    ("transforms/loops/buffers.py", "0 -> 1"): ("if d in par else AffineExpr.constant(",),
    ("lowering/texpr_to_tl.py", "0 -> 1"): ("or atom.den.const_value() <= ",),
    # `_same_points`'s two sides, not the producer's maps composed in `inline_into_consumer`
    ("transforms/loops/fusion.py", "e.replace_dims_and_symbols(at, ...) -> e"): (
        "    return [",
        "        ",
    ),
}


def known_equivalent(m: Mutation, root: Path = ROOT) -> str:
    """The reason `m` is a reviewed equivalent mutant, or ""."""
    reason = KNOWN_EQUIVALENT.get((m.path, m.description), "")
    prefixes = _EQUIVALENT_PREFIX.get((m.path, m.description))
    if reason and prefixes is not None:
        line = (root / m.path).read_text().splitlines()[m.line - 1]
        if not line.encode()[: m.col].decode().endswith(prefixes):
            return ""
    return reason


def module_name(rel: str) -> str:
    parts = Path(rel).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["mlc", *parts])


def run_tests(
    tests: Sequence[str],
    mutation: Mutation | None,
    timeout: float,
    root: Path = ROOT,
    workdir: Path | None = None,
) -> tuple[str, float, str]:
    """Run `tests` (pytest node ids) with `mutation` applied (None: unmutated) in a
    subprocess; returns (status, seconds, last output lines)."""
    with tempfile.TemporaryDirectory(prefix="mlc-mutant-", dir=workdir) as tmp:
        tmpdir = Path(tmp)
        if mutation is None:
            spec = {"module": "", "file": "", "source": ""}
        else:
            path = root / mutation.path
            spec = {
                "module": module_name(mutation.path),
                "file": str(path),
                "source": mutation.apply(path.read_text()),
            }
        (tmpdir / "spec.json").write_text(json.dumps(spec))
        env = {
            **os.environ,
            "MLC_REGRESSION_DIR": str(tmpdir / "regressions"),
            "HYPOTHESIS_STORAGE_DIRECTORY": str(tmpdir / "hypothesis"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.pop("PYTEST_XDIST_WORKER", None)
        cmd = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(tmpdir / "spec.json"),
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            str(root),
            "-c",
            str(root / "pyproject.toml"),
            *tests,
        ]
        start = time.monotonic()
        try:
            proc = subprocess.run(
                cmd, cwd=tmpdir, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start, ""
        seconds = time.monotonic() - start
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        if proc.returncode == INVALID:
            return "invalid", seconds, tail
        if proc.returncode == 0:
            return "survived", seconds, tail
        if proc.returncode == 1:
            return "killed", seconds, tail
        # usage / collection errors (2-5) are the mutant's doing when the baseline passed
        return "killed", seconds, tail


#: the areas of the kill-rate table (docs/testing.md), by source file (first match wins)
AREAS: tuple[tuple[str, str], ...] = (
    ("lowering/graph_to_tl.py", "graph"),
    ("lowering/texpr_to_tl.py", "expressions"),
    ("transforms/loops/fusion.py", "fusion"),
    ("transforms/loops/rfactor.py", "fusion"),
    ("transforms/loops/tensorize.py", "tensorize"),
    ("lowering/*_to_llvm.py", "llvm lowering"),
    ("lowering/llvm_builder.py", "llvm lowering"),
    ("lowering/tl_kernel_to_loops.py", "loops"),
    ("transforms/loops/*.py", "loops"),
)


def area_of(path: str) -> str:
    """The area (`AREAS`) of a source file relative to ROOT."""
    return next((area for glob, area in AREAS if fnmatch.fnmatch(path, glob)), "other")


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    excluded_tests: list[str] = field(default_factory=list)
    sites: int = 0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def caught_fraction(self) -> float:
        """(killed + timeout) / (killed + timeout + survived): invalid and reviewed
        equivalent mutants are left out."""
        caught = self.count("killed") + self.count("timeout")
        valid = caught + self.count("survived")
        return caught / valid if valid else 1.0

    @property
    def raw_fraction(self) -> float:
        """(killed + timeout) / every mutant that imports (equivalent ones count as not
        caught)."""
        caught = self.count("killed") + self.count("timeout")
        valid = caught + self.count("survived") + self.count("equivalent")
        return caught / valid if valid else 1.0

    def text(self) -> str:
        lines = [
            f"sites: {self.sites}, mutants run: {len(self.outcomes)}",
            f"killed: {self.count('killed')}, timeout: {self.count('timeout')}, "
            f"survived: {self.count('survived')}, equivalent: {self.count('equivalent')}, "
            f"invalid: {self.count('invalid')}",
            f"caught: {self.caught_fraction:.1%} of the non-equivalent mutants "
            f"({self.raw_fraction:.1%} counting reviewed equivalent ones as not caught)",
        ]
        by_kind: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            by_kind.setdefault(o.mutation.kind, []).append(o)
        for kind, outs in by_kind.items():
            valid = [o for o in outs if o.status not in ("invalid", "equivalent")]
            caught = sum(o.status in ("killed", "timeout") for o in valid)
            lines.append(f"  {kind}: {caught}/{len(valid)} caught")
        by_area: dict[str, list[Outcome]] = {}
        for o in self.outcomes:
            by_area.setdefault(area_of(o.mutation.path), []).append(o)
        for area, outs in sorted(by_area.items()):
            valid = [o for o in outs if o.status not in ("invalid", "equivalent")]
            caught = sum(o.status in ("killed", "timeout") for o in valid)
            lines.append(f"  area {area}: {caught}/{len(valid)} caught")
        survivors = [o for o in self.outcomes if o.status == "survived"]
        if survivors:
            lines.append("survivors:")
            lines += [
                f"  {o.mutation.where} {o.mutation.kind}: {o.mutation.description}"
                for o in survivors
            ]
        equivalent = [o for o in self.outcomes if o.status == "equivalent"]
        if equivalent:
            lines.append("equivalent (survived; reviewed, see KNOWN_EQUIVALENT):")
            lines += [
                f"  {o.mutation.where} {o.mutation.kind}: {o.mutation.description} ({o.detail})"
                for o in equivalent
            ]
        if self.excluded_tests:
            lines.append("tests failing without any mutation (not used):")
            lines += [f"  {t}" for t in self.excluded_tests]
        return "\n".join(lines)


def run(
    mutations: Sequence[Mutation],
    *,
    timeout: float = 300.0,
    jobs: int = 1,
    root: Path = ROOT,
    tests_dir: Path = TESTS,
    log: Callable[[str], None] | None = None,
    deselect: Sequence[str] = (),
) -> Report:
    """Run every mutation against its covering property tests (tests that fail without a
    mutation are left out and listed; so are those matching a `deselect` glob, on the
    node id relative to `tests_dir`'s parent: how strong the suite was without them)."""

    if log is None:

        def log(message: str) -> None:
            print(message, flush=True)

    report = Report()
    tests_for: dict[str, list[str]] = {}
    for path in sorted({m.path for m in mutations}):
        tests_for[path] = [
            t
            for t in covering_tests(root / path, root, tests_dir)
            if not any(
                fnmatch.fnmatch(Path(t).relative_to(tests_dir.parent).as_posix(), g)
                for g in deselect
            )
        ]
    every = sorted({t for ts in tests_for.values() for t in ts})
    status, secs, _ = run_tests(every, None, timeout, root)
    log(f"baseline: {len(every)} covering property tests, {status} unmutated in {secs:.1f}s")
    baseline = dict.fromkeys(every, True)
    if status != "survived":  # find the tests failing without a mutation
        for test in every:
            status, secs, tail = run_tests([test], None, timeout, root)
            baseline[test] = status == "survived"
            if not baseline[test]:
                report.excluded_tests.append(test)
                log(f"baseline: {test} fails without a mutation, left out\n{tail}")
    for path in tests_for:
        tests_for[path] = [t for t in tests_for[path] if baseline[t]]

    def one(m: Mutation) -> Outcome:
        tests = tests_for[m.path]
        if not tests:
            return Outcome(m, "survived", 0.0, "no covering property test")
        status, secs, tail = run_tests(tests, m, timeout, root)
        reason = known_equivalent(m, root)
        if status == "survived" and reason:
            return Outcome(m, "equivalent", secs, reason)
        return Outcome(m, status, secs, tail)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, outcome in enumerate(pool.map(one, mutations), 1):
            m = outcome.mutation
            log(
                f"[{i}/{len(mutations)}] {outcome.status:8} {outcome.seconds:6.1f}s "
                f"{m.where} {m.kind}: {m.description}"
            )
            report.outcomes.append(outcome)
    return report


def excluded(m: Mutation, patterns: Iterable[str], root: Path = ROOT) -> bool:
    """Whether `m` lies in a file matching one of `patterns` (globs under `root`), or in
    the top-level function or class (or `Class.method`) `NAME` of such a file given as
    `GLOB::NAME`."""
    for pattern in patterns:
        glob, _, name = pattern.partition("::")
        if (root / m.path).resolve() not in {p.resolve() for p in root.glob(glob)}:
            continue
        if not name:
            return True
        body: list[ast.stmt] = ast.parse((root / m.path).read_text()).body
        node: ast.stmt | None = None
        for part in name.split("."):
            node = next((n for n in body if getattr(n, "name", None) == part), None)
            body = getattr(node, "body", [])
        if node is not None and node.lineno <= m.line <= (node.end_lineno or node.lineno):
            return True
    return False
