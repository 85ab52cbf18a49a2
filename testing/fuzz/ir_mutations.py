"""Byte-, line- and token-level mutations of textual IR.

Each mutation takes a random generator, the text and donor lines (lines of other corpus
files, for splicing) and returns the mutated text, or None where it does not apply (no
number to change, ...). `mutate` applies one to a few of them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

Mutation = Callable[[random.Random, str, Sequence[str]], str | None]

EXTREME_NUMBERS: tuple[str, ...] = (
    "0",
    "-1",
    "-0.0",
    "2147483647",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e39",
    "-1e39",
    "1e400",
    "1.0e-50",
    "nan",
    "inf",
    "-inf",
    "0x7FC00000",
    "0xFFFFFFFFFFFFFFFFFFFF",
    "1.5",
)
"""What `number` and `dimension` write in place of a number."""

RANDOM_TYPES: tuple[str, ...] = (
    "i0",
    "i1",
    "i128",
    "i65536",
    "si32",
    "ui64",
    "f16",
    "bf16",
    "f80",
    "f128",
    "tf32",
    "f8E4M3FN",
    "index",
    "none",
    "complex<f32>",
    "vector<0xf32>",
    "vector<4xi0>",
    "tensor<*xf32>",
    "tensor<?x3xf32>",
    "tensor<0x0xi128>",
    "memref<0xf32>",
    "memref<?xf80>",
    "!llvm.ptr",
    "tuple<>",
    "i1000000000",
)
"""What `type` writes in place of a type."""

_TOKEN = re.compile(
    r'"(?:[^"\\\n]|\\.)*"'  # strings
    r"|[%@^#!][\w$.-]+"  # SSA names, symbols, block labels, attribute and type aliases
    r"|-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"
    r"|[A-Za-z_][\w.$]*"
    r"|->|\S"
)
_NUMBER = re.compile(r"(?<![\w%@#^.$!-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_DIMENSION = re.compile(r"(?<=[<x])(\d+|\?)(?=x)")
_TYPE = re.compile(r"(?<![\w%@#^!.])(?:[su]?i\d+|f16|f32|f64|bf16|index)(?![\w.])")
_SSA = re.compile(r"%[\w$.-]+")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _lines(text: str) -> list[str]:
    return text.split("\n")


def delete_line(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def duplicate_line(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return "\n".join(lines)


def swap_lines(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    lines = _lines(text)
    if len(lines) < 2:
        return None
    i, j = rng.sample(range(len(lines)), 2)
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def splice_line(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    if not donors:
        return None
    lines = _lines(text)
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(donors))
    return "\n".join(lines)


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def _replace(text: str, span: tuple[int, int], new: str) -> str:
    return text[: span[0]] + new + text[span[1] :]


def delete_token(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    tokens = _tokens(text)
    return _replace(text, rng.choice(tokens).span(), "") if tokens else None


def duplicate_token(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    tokens = _tokens(text)
    if not tokens:
        return None
    t = rng.choice(tokens)
    return _replace(text, t.span(), t.group() + " " + t.group())


def swap_tokens(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    tokens = _tokens(text)
    if len(tokens) < 2:
        return None
    i = rng.randrange(len(tokens) - 1)
    j = i + 1 if rng.random() < 0.5 else rng.randrange(i + 1, len(tokens))
    a, b = tokens[i], tokens[j]
    return text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]


def _sub_one(rng: random.Random, pattern: re.Pattern[str], text: str, new: str) -> str | None:
    found = list(pattern.finditer(text))
    return _replace(text, rng.choice(found).span(), new) if found else None


def number(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    return _sub_one(rng, _NUMBER, text, rng.choice(EXTREME_NUMBERS))


def dimension(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    new = rng.choice(["0", "-1", "?", "2147483648", "4611686018427387904", "18446744073709551616"])
    return _sub_one(rng, _DIMENSION, text, new)


def type_(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    return _sub_one(rng, _TYPE, text, rng.choice(RANDOM_TYPES))


def _at_token(rng: random.Random, text: str, insert: str) -> str:
    tokens = _tokens(text)
    at = rng.choice(tokens).start() if tokens else 0
    return text[:at] + insert + text[at:]


def deep_nesting(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    depth = rng.choice([64, 300, 1000, 5000])
    opener, closer = rng.choice([("(", ")"), ("[", "]"), ("{", "}"), ("<", ">")])
    inner = rng.choice(["", "1", "i32", "%0"])
    closed = rng.random() < 0.5
    return _at_token(rng, text, opener * depth + inner + (closer * depth if closed else ""))


def unterminated_string(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    strings = list(_STRING.finditer(text))
    if strings and rng.random() < 0.6:
        s = rng.choice(strings)
        return _replace(text, s.span(), s.group()[:-1])  # drop the closing quote
    return _at_token(rng, text, rng.choice(['"abc', '"\\', '"\\"', '"\n"']))


def shuffle_ssa(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    """Swap two SSA-name occurrences (a use before its definition, a type mismatch...)."""
    found = list(_SSA.finditer(text))
    if len(found) < 2:
        return None
    a, b = sorted(rng.sample(found, 2), key=lambda m: m.start())
    return text[: a.start()] + b.group() + text[a.end() : b.start()] + a.group() + text[b.end() :]


def rename_ssa(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    """One SSA-name occurrence renamed (an undefined value, or a redefinition)."""
    found = list(_SSA.finditer(text))
    if not found:
        return None
    names = sorted({m.group() for m in found})
    new = rng.choice([*names, "%undefined", "%0", "%-1", "%" + "x" * 300])
    return _replace(text, rng.choice(found).span(), new)


def truncate(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    return text[: rng.randrange(len(text) + 1)]


def flip_byte(rng: random.Random, text: str, donors: Sequence[str]) -> str | None:
    """One character replaced by a random one (controls, non-ASCII, NUL)."""
    if not text:
        return None
    i = rng.randrange(len(text))
    new = rng.choice(
        ["\x00", "\x7f", "\ufffd", "\u00e9", "\t", "\r", "\\", rng.choice("{}()<>[]%@\"':,=")]
    )
    return text[:i] + new + text[i + 1 :]


MUTATIONS: dict[str, Mutation] = {
    "delete-line": delete_line,
    "duplicate-line": duplicate_line,
    "swap-lines": swap_lines,
    "splice-line": splice_line,
    "delete-token": delete_token,
    "duplicate-token": duplicate_token,
    "swap-tokens": swap_tokens,
    "number": number,
    "dimension": dimension,
    "type": type_,
    "deep-nesting": deep_nesting,
    "unterminated-string": unterminated_string,
    "shuffle-ssa": shuffle_ssa,
    "rename-ssa": rename_ssa,
    "truncate": truncate,
    "flip-byte": flip_byte,
}

_WEIGHTS: dict[str, float] = {"truncate": 0.3, "deep-nesting": 0.5, "unterminated-string": 0.5}


def mutate(
    rng: random.Random, text: str, donors: Sequence[str] = (), max_mutations: int = 3
) -> tuple[str, list[str]]:
    """`text` with 1 to `max_mutations` random mutations; returns it and their names."""
    names = list(MUTATIONS)
    weights = [_WEIGHTS.get(n, 1.0) for n in names]
    applied: list[str] = []
    count = 1 + sum(rng.random() < 0.4 for _ in range(max_mutations - 1))
    for _ in range(count * 4):  # a few tries: some mutations do not apply
        if len(applied) == count:
            break
        name = rng.choices(names, weights)[0]
        new = MUTATIONS[name](rng, text, donors)
        if new is not None and new != text:
            text = new
            applied.append(name)
    return text, applied
