"""Pass pipelines for `mlc-opt`: parsing with one-line errors, `--list-passes`, `--help-pass`.

Both xDSL's `pass-a{opt=v},pass-b` and MLIR's `builtin.module(pass-a{opt=v},pass-b)` are
accepted; nested pass managers (`builtin.module(func.func(cse))`) are not, since every mlc
pass runs on the whole module. Errors are `PipelineError`s whose text is one line.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import ArgSpec, ArgSpecConvertible, parse_pipeline, parse_spec
from xdsl.utils.exceptions import ArgSpecParseError
from xdsl.utils.hints import isa

PassFactories = dict[str, Callable[[], type[ModulePass]]]
ArgSpecConvertibleT = TypeVar("ArgSpecConvertibleT", bound=ArgSpecConvertible)

_ANCHOR = re.compile(r"([A-Za-z_][\w.$-]*)\s*\(")
_TOP_LEVEL_ANCHORS = ("builtin.module", "any")
_TYPE_WORDS: dict[Any, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "booleans"),
    str: ("a string", "strings"),
}


class OptError(Exception):
    """A user error of mlc-opt, printed as `mlc-opt: error: <text>` (one line), exit 1."""


class PipelineError(OptError):
    """A mistake in a pass pipeline or a pass name."""


def suggest(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest match of `name` in `known`, else ``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """(index, char) of each character of `text` outside double-quoted strings; a
    `PipelineError` if a string is not closed."""
    quote, escaped = False, False
    for i, c in enumerate(text):
        if quote:
            quote = escaped or c != '"'
            escaped = not escaped and c == "\\"
        elif c == '"':
            quote = True
        else:
            yield i, c
    if quote:
        raise PipelineError(f"malformed pass pipeline '{text}': unclosed '\"'")


def _outside_options(text: str) -> Iterable[tuple[int, str]]:
    """(index, char) of each character of `text` outside `{...}`, `[...]` and quotes."""
    depth = 0
    for i, c in _unquoted(text):
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth = max(depth - 1, 0)
        elif depth == 0:
            yield i, c


def _check_balanced(text: str) -> None:
    """Raise a `PipelineError` for an unclosed or unopened `{`, `(` or quote in `text`."""
    stack: list[str] = []
    for _, c in _unquoted(text):
        if c in "{([":
            stack.append(c)
        elif c in "})]":
            if not stack or "{([".index(stack.pop()) != "})]".index(c):
                raise PipelineError(f"malformed pass pipeline '{text}': unbalanced '{c}'")
    if stack:
        closing = "})]"["{([".index(stack[-1])]
        raise PipelineError(
            f"malformed pass pipeline '{text}': unclosed '{stack[-1]}' (missing '{closing}')"
        )


def unwrap_mlir_pipeline(text: str) -> str:
    """`builtin.module(a,b{x=1})` -> `a,b{x=1}`; a flat xDSL pipeline is returned as is."""
    _check_balanced(text)
    outside = "".join(c for _, c in _outside_options(text))
    if "(" not in outside:
        return text
    stripped = text.strip()
    match = _ANCHOR.match(stripped)
    if match is None or not stripped.endswith(")"):
        raise PipelineError(
            f"malformed pass pipeline '{text}': expected 'builtin.module(pass,...)' or 'pass,...'"
        )
    anchor, inner = match.group(1), stripped[match.end() : -1]
    if anchor not in _TOP_LEVEL_ANCHORS:
        raise PipelineError(
            f"pass pipelines anchored on '{anchor}' are not supported: mlc passes run on "
            f"the whole module; write 'builtin.module(...)'"
        )
    nested = _ANCHOR.search("".join(c for _, c in _outside_options(inner)))
    if nested is not None:
        raise PipelineError(
            f"nested pass managers are not supported ('{nested.group(1)}(...)' in "
            f"'{text}'): list the passes directly in 'builtin.module(...)'"
        )
    return inner


def spec_error_parts(error: ArgSpecParseError) -> tuple[str, str]:
    """Where (` at column C`, ` at line L, column C` or ``) and what from xDSL's multi-line
    spec syntax error: its header, `pass-pipeline:LINE:COL`, the source line, a caret
    line, then the message."""
    lines = str(error).splitlines()
    position = re.search(r":(\d+):(\d+)$", lines[1]) if len(lines) > 1 else None
    where = ""
    if position is not None:
        line, column = position.groups()
        where = f" at column {column}" if line == "1" else f" at line {line}, column {column}"
    message = lines[4].strip() if len(lines) > 4 else "syntax error"
    return where, message


def _syntax_error(text: str, error: ArgSpecParseError) -> PipelineError:
    """One line from xDSL's multi-line pipeline syntax error (position, then message)."""
    where, message = spec_error_parts(error)
    return PipelineError(f"malformed pass pipeline '{text}'{where}: {message}")


def one_line(text: str) -> str:
    """`text` with its line breaks and other control characters escaped (`\\n`)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def describe_type(hint: Any) -> str:
    """A pass option type in words: `int` -> `an integer`."""
    if hint in _TYPE_WORDS:
        return _TYPE_WORDS[hint][0]
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return " or ".join(describe_type(a) for a in args if a is not NoneType) + " (optional)"
    if origin is tuple and args and args[0] in _TYPE_WORDS:
        return "a comma-separated list of " + _TYPE_WORDS[args[0]][1]
    return getattr(hint, "__name__", str(hint))


def _accepts(values: tuple[Any, ...], hint: Any) -> bool:
    """Whether xDSL converts `values` (one option's values) to a field of type `hint`."""
    if not values:
        return get_origin(hint) in (Union, UnionType) and NoneType in get_args(hint)
    if hint in (int, float) and any(isinstance(v, bool) for v in values):
        return False  # `true` is no number, though Python's bool is an int
    return (len(values) == 1 and isa(values[0], hint)) or isa(values, hint)


def options(cls: type[ArgSpecConvertible]) -> list[dataclasses.Field[Any]]:
    """The dataclass fields a pipeline can set on pass (or target) `cls`."""
    return [f for f in dataclasses.fields(cls) if f.init and f.name != "name"]


def _instantiate(
    cls: type[ArgSpecConvertibleT], spec: ArgSpec, kind: str = "pass"
) -> ArgSpecConvertibleT:
    """`cls` (a pass or target) configured by `spec`; one-line errors name it and the option."""
    fields = {f.name: f for f in options(cls)}
    hints = get_type_hints(cls)
    for given, values in spec.parameters.items():
        name = given.replace("-", "_")
        if name not in fields:
            known = [f.replace("_", "-") for f in fields]
            listing = ", ".join(known) if known else "none"
            raise PipelineError(
                f"{kind} '{spec.name}' has no option '{given}'"
                f"{suggest(given.replace('_', '-'), known)}; its options: {listing}"
            )
        if not _accepts(values, hints[name]):
            got = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)
            raise PipelineError(
                f"{kind} '{spec.name}': option '{given}' expects {describe_type(hints[name])}, "
                f"got {repr(got) if values else 'no value'}"
            )
        if _is_mlc(cls) and hints[name] is int and values[0] < 0:
            raise PipelineError(
                f"{kind} '{spec.name}': option '{given}' must not be negative, got {values[0]}"
            )
    try:
        return cls.from_spec(spec)
    except (ValueError, TypeError) as e:
        raise PipelineError(f"{kind} '{spec.name}': {e}") from None


def _is_mlc(cls: type) -> bool:
    """Whether `cls` is one of mlc's own passes or targets, none of whose integer options
    (sizes, factors, counts, bit widths, operand indices) can be negative."""
    return cls.__module__.split(".")[0] == "mlc"


def parse_passes(text: str, available: PassFactories) -> tuple[ModulePass, ...]:
    """The passes of pipeline `text`; raises `PipelineError` on any mistake in it."""
    flat = unwrap_mlir_pipeline(text)
    try:
        specs = list(parse_pipeline(flat))
    except ArgSpecParseError as e:
        raise _syntax_error(flat, e) from None
    passes: list[ModulePass] = []
    for spec in specs:
        if spec.name not in available:
            raise PipelineError(
                f"unknown pass '{spec.name}'{suggest(spec.name, available)}; "
                "--list-passes lists them"
            )
        passes.append(_instantiate(available[spec.name](), spec))
    return tuple(passes)


def check_target(text: str, factory: Callable[..., Any]) -> None:
    """Raise a one-line `PipelineError` if `-t text` gives options its target lacks."""
    if not inspect.signature(factory).parameters:  # a `Target` class, not a legacy printer
        _instantiate(factory(), parse_spec(text), "target")


def _doc(cls: type) -> str:
    """The class's own docstring (not a dataclass's generated signature), cleaned."""
    doc = cls.__dict__.get("__doc__") or ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc)


def summary(cls: type, limit: int = 120) -> str:
    """The first sentence of the class docstring, as one line of at most `limit` chars."""
    paragraph = " ".join(_doc(cls).split("\n\n", 1)[0].split())
    sentence = re.split(r"(?<=\.)\s+(?=[A-Z`(])", paragraph, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def list_passes(available: PassFactories, ours: set[str]) -> str:
    """`--list-passes`: every pass with a one-line description, mlc's first."""
    lines: list[str] = []
    for title, names in (
        ("mlc passes:", sorted(n for n in available if n in ours)),
        ("xDSL passes:", sorted(n for n in available if n not in ours)),
    ):
        lines.append(title)
        width = max((len(n) for n in names), default=0)
        for name in names:
            try:
                text = summary(available[name]()) or "(no description)"
            except Exception as e:  # an optional dependency of the pass is missing
                text = f"(cannot be loaded: {type(e).__name__}: {e})"
            lines.append(f"  {name.ljust(width)}  {text}")
        lines.append("")
    lines.append("--help-pass NAME shows a pass's options.")
    return "\n".join(lines) + "\n"


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, bool):
        return f"default: {str(value).lower()}"
    if isinstance(value, str):
        return f'default: "{value}"'
    if isinstance(value, tuple):
        return "default: " + ",".join(str(v) for v in value)  # pyright: ignore
    return f"default: {value}"


def help_pass(name: str, available: PassFactories) -> str:
    """`--help-pass NAME`: the pass's docstring and its options (type, default)."""
    if name not in available:
        raise PipelineError(f"unknown pass '{name}'{suggest(name, available)}")
    cls = available[name]()
    hints = get_type_hints(cls)
    lines = [f"{name} ({cls.__module__}.{cls.__name__})", ""]
    lines += [_doc(cls) or "(no description)", ""]
    lines += ["Options:" if options(cls) else "Options: none"]
    for field in options(cls):
        option = field.name.replace("_", "-")
        lines.append(f"  {option}: {describe_type(hints[field.name])} ({_default(field)})")
    lines += ["", f"Usage: -p '{name}{{option=value ...}}' (options separated by spaces)"]
    return "\n".join(lines) + "\n"
