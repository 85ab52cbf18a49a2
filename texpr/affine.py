"""Symbolic integer expressions: sizes (``(H - K) / S + 1``) and indices (``h * S + kh - P``).

A `Poly` is a canonical sum of monomials with integer coefficients. A monomial is
a product of atoms: sizes (`Sym`), iterators (`Iter`) and floor-divisions or
modulos (`FloorDiv`, `Mod`) of polynomials. Equal expressions up to
commutativity, associativity and constant folding have equal `Poly` values, so
``==`` is a cheap symbolic equality test. ``/`` is floor division and ``%`` its
non-negative remainder (for a positive divisor), as in MLIR's affine maps.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mlc.texpr.errors import TexprError

#: A value an expression evaluates to: a Python int or an integer numpy array.
Value = int | np.ndarray


@dataclass(frozen=True)
class Sym:
    """A size symbol: bound from an input shape, a size parameter or given explicitly."""

    name: str


@dataclass(frozen=True)
class Iter:
    """An index variable (iterator) of a statement."""

    name: str


@dataclass(frozen=True)
class FloorDiv:
    """``num / den`` rounded towards minus infinity (``den`` > 0)."""

    num: Poly
    den: Poly


@dataclass(frozen=True)
class Mod:
    """``num % den``, in ``[0, den)`` for ``den`` > 0."""

    num: Poly
    den: Poly


Atom = Sym | Iter | FloorDiv | Mod
Monomial = tuple[Atom, ...]


def _atom_key(atom: Atom) -> tuple[object, ...]:
    if isinstance(atom, Sym):
        return (0, atom.name)
    if isinstance(atom, Iter):
        return (1, atom.name)
    kind = 2 if isinstance(atom, FloorDiv) else 3
    return (kind, atom.num.key, atom.den.key)


def _mono_key(mono: Monomial) -> tuple[object, ...]:
    return tuple(_atom_key(a) for a in mono)


_first = operator.itemgetter(0)


@dataclass(frozen=True)
class Poly:
    """A canonical integer polynomial over atoms; build with `const`, `sym`, `it` and operators."""

    terms: tuple[tuple[Monomial, int], ...] = ()
    key: tuple[object, ...] = field(default=(), compare=False, repr=False, hash=False)

    @staticmethod
    def from_terms(terms: Mapping[Monomial, int]) -> Poly:
        """The polynomial sum of ``coefficient * monomial`` (monomials need not be sorted)."""
        merged: dict[Monomial, int] = {}
        for mono, coeff in terms.items():
            canon = mono if len(mono) < 2 else tuple(sorted(mono, key=_atom_key))
            merged[canon] = merged.get(canon, 0) + coeff
        # each monomial's key made once (distinct monomials have distinct keys)
        keyed = sorted(((_mono_key(m), m, c) for m, c in merged.items() if c != 0), key=_first)
        return Poly(tuple((m, c) for _, m, c in keyed), tuple((k, c) for k, _, c in keyed))

    # -- predicates and views ---------------------------------------------------------

    def is_const(self) -> bool:
        """Whether this polynomial is an integer constant."""
        return all(not mono for mono, _ in self.terms)

    def const_value(self) -> int:
        """The value of a constant polynomial."""
        if not self.is_const():
            raise ValueError(f"{self} is not a constant")
        return self.terms[0][1] if self.terms else 0

    def as_iterator(self) -> str | None:
        """The iterator name if this polynomial is exactly one iterator, else ``None``."""
        if len(self.terms) == 1:
            mono, coeff = self.terms[0]
            if coeff == 1 and len(mono) == 1 and isinstance(mono[0], Iter):
                return mono[0].name
        return None

    def as_symbol(self) -> str | None:
        """The size name if this polynomial is exactly one size symbol, else ``None``."""
        if len(self.terms) == 1:
            mono, coeff = self.terms[0]
            if coeff == 1 and len(mono) == 1 and isinstance(mono[0], Sym):
                return mono[0].name
        return None

    def atoms(self) -> Iterable[Atom]:
        """Every atom, recursively (atoms inside divisions included)."""
        for mono, _ in self.terms:
            for atom in mono:
                yield atom
                if isinstance(atom, FloorDiv | Mod):
                    yield from atom.num.atoms()
                    yield from atom.den.atoms()

    def symbols(self) -> frozenset[str]:
        """Names of the size symbols occurring in the polynomial."""
        return frozenset(a.name for a in self.atoms() if isinstance(a, Sym))

    def iterators(self) -> frozenset[str]:
        """Names of the iterators occurring in the polynomial."""
        return frozenset(a.name for a in self.atoms() if isinstance(a, Iter))

    def affine_form(self) -> tuple[dict[str, Poly], Poly] | None:
        """``({iterator: coefficient}, rest)`` with ``self == sum(coeff * it) + rest``, where
        coefficients and ``rest`` are iterator-free; ``None`` if ``/`` or ``%`` apply to iterators."""
        if self.has_iterator_division():
            return None
        coeffs: dict[str, dict[Monomial, int]] = {}
        rest: dict[Monomial, int] = {}
        for mono, coeff in self.terms:
            iters = [a for a in mono if isinstance(a, Iter)]
            if not iters:
                rest[mono] = coeff
                continue
            if len(iters) > 1:
                return None
            others = tuple(a for a in mono if a is not iters[0])
            coeffs.setdefault(iters[0].name, {})[others] = coeff
        return {k: Poly.from_terms(v) for k, v in sorted(coeffs.items())}, Poly.from_terms(rest)

    def has_iterator_division(self) -> bool:
        """Whether a floor division or modulo of an iterator expression occurs."""
        return any(isinstance(a, FloorDiv | Mod) and a.num.iterators() for a in self.atoms())

    def has_div(self) -> bool:
        """Whether a floor division or modulo occurs."""
        return any(isinstance(a, FloorDiv | Mod) for a in self.atoms())

    # -- arithmetic ----------------------------------------------------------------------

    def __add__(self, other: Poly | int) -> Poly:
        other = _lift(other)
        if not other.terms:
            return self
        if not self.terms:
            return other
        terms: dict[Monomial, int] = dict(self.terms)
        for mono, coeff in other.terms:
            terms[mono] = terms.get(mono, 0) + coeff
        return Poly.from_terms(terms)

    def __radd__(self, other: int) -> Poly:
        return self + other

    def __neg__(self) -> Poly:
        return Poly.from_terms({m: -c for m, c in self.terms})

    def __sub__(self, other: Poly | int) -> Poly:
        return self + (-_lift(other))

    def __rsub__(self, other: int) -> Poly:
        return _lift(other) - self

    def __mul__(self, other: Poly | int) -> Poly:
        other = _lift(other)
        if other.is_const():
            return self._scaled(other.const_value())
        if self.is_const():
            return other._scaled(self.const_value())
        terms: dict[Monomial, int] = {}
        for m1, c1 in self.terms:
            for m2, c2 in other.terms:
                mono = tuple(sorted(m1 + m2, key=_atom_key))
                terms[mono] = terms.get(mono, 0) + c1 * c2
        return Poly.from_terms(terms)

    def __rmul__(self, other: int) -> Poly:
        return self * other

    def _scaled(self, factor: int) -> Poly:
        """``factor * self``: the terms keep their (canonical) order."""
        if factor == 1:
            return self
        if factor == 0:
            return const(0)
        return Poly(
            tuple((m, c * factor) for m, c in self.terms),
            tuple((k, c * factor) for k, c in self.key),
        )

    def floordiv(self, den: Poly | int) -> Poly:
        """``self / den`` (floor division), simplified where the result is exact."""
        den = _lift(den)
        if den.is_const():
            d = den.const_value()
            if d == 0:
                raise TexprError(f"division by zero in `{self} / 0`")
            if self.is_const():
                return const(self.const_value() // d)
            if d == 1:
                return self
            if all(c % d == 0 for _, c in self.terms):
                return Poly.from_terms({m: c // d for m, c in self.terms})
        elif not self.terms:
            return self
        return Poly.from_terms({(FloorDiv(self, den),): 1})

    def mod(self, den: Poly | int) -> Poly:
        """``self % den`` (non-negative remainder), simplified where possible."""
        den = _lift(den)
        if den.is_const():
            d = den.const_value()
            if d == 0:
                raise TexprError(f"modulo by zero in `{self} % 0`")
            if self.is_const():
                return const(self.const_value() % d)
            if d == 1 or all(c % d == 0 for _, c in self.terms):
                return const(0)
        elif not self.terms:
            return self
        return Poly.from_terms({(Mod(self, den),): 1})

    # -- substitution and evaluation -----------------------------------------------------

    def substitute(self, mapping: Mapping[str, Poly | int]) -> Poly:
        """Replace sizes and iterators named in ``mapping``; simplifies the result."""
        if not mapping:
            return self
        result = const(0)
        for mono, coeff in self.terms:
            value = const(coeff)
            for atom in mono:
                value = value * _substitute_atom(atom, mapping)
            result = result + value
        return result

    def evaluate(
        self, env: Mapping[str, Value], zero_divisors: list[np.ndarray] | None = None
    ) -> Value:
        """The value with names bound by ``env`` (ints or broadcastable int arrays).

        A zero divisor raises, unless ``zero_divisors`` is given: then it is replaced by 1
        and a mask of where it was zero is appended (used to discard sampled sizes).
        """
        total: Value = 0
        for mono, coeff in self.terms:
            value: Value = coeff
            for atom in mono:
                value = value * _evaluate_atom(atom, env, zero_divisors)
            total = total + value
        return total

    # -- printing ------------------------------------------------------------------------

    def __str__(self) -> str:
        return format_poly(self)

    def __repr__(self) -> str:
        return f"Poly({format_poly(self)!r})"


def _lift(value: Poly | int) -> Poly:
    return value if isinstance(value, Poly) else const(value)


def const(value: int) -> Poly:
    """The constant polynomial ``value`` (made once per value: polynomials are immutable)."""
    return _const(int(value))


@functools.lru_cache(maxsize=4096)
def _const(value: int) -> Poly:
    return Poly.from_terms({(): value})


@functools.lru_cache(maxsize=4096)
def sym(name: str) -> Poly:
    """The size symbol ``name`` (made once per name: polynomials are immutable)."""
    return Poly.from_terms({(Sym(name),): 1})


@functools.lru_cache(maxsize=4096)
def it(name: str) -> Poly:
    """The iterator ``name`` (made once per name)."""
    return Poly.from_terms({(Iter(name),): 1})


def _substitute_atom(atom: Atom, mapping: Mapping[str, Poly | int]) -> Poly:
    if isinstance(atom, Sym | Iter):
        return _lift(mapping[atom.name]) if atom.name in mapping else Poly.from_terms({(atom,): 1})
    num = atom.num.substitute(mapping)
    den = atom.den.substitute(mapping)
    return num.floordiv(den) if isinstance(atom, FloorDiv) else num.mod(den)


def _evaluate_atom(
    atom: Atom, env: Mapping[str, Value], zero_divisors: list[np.ndarray] | None
) -> Value:
    if isinstance(atom, Sym | Iter):
        try:
            return env[atom.name]
        except KeyError:
            raise TexprError(f"no value for `{atom.name}`") from None
    num = atom.num.evaluate(env, zero_divisors)
    den = atom.den.evaluate(env, zero_divisors)
    if np.any(np.asarray(den) == 0):
        if zero_divisors is None:
            raise TexprError(f"division by zero: `{atom.den}` is 0")
        zero = np.asarray(den) == 0
        zero_divisors.append(zero)
        den = np.where(zero, 1, den)
    if isinstance(atom, FloorDiv):
        return num // den
    return num % den


# -- printing ----------------------------------------------------------------------------


def _is_iterish(atom: Atom) -> bool:
    if isinstance(atom, Iter):
        return True
    if isinstance(atom, FloorDiv | Mod):
        return bool(atom.num.iterators())
    return False


def _print_key(item: tuple[Monomial, int]) -> tuple[object, ...]:
    """Iterator terms first (by iterator), then positive, then negative size terms, then 1."""
    mono, coeff = item
    if not mono:
        return (3,)
    iterish = [a for a in mono if _is_iterish(a)]
    if iterish:
        return (0, str(_format_atom(iterish[0])), _mono_key(mono))
    return (1 if coeff > 0 else 2, -len(mono), _mono_key(mono))


def _format_atom(atom: Atom) -> str:
    if isinstance(atom, Sym | Iter):
        return atom.name
    op = "/" if isinstance(atom, FloorDiv) else "%"
    num = format_poly(atom.num)
    simple = (
        len(atom.num.terms) == 1 and atom.num.terms[0][1] == 1 and len(atom.num.terms[0][0]) == 1
    )
    if not simple:
        num = f"({num})"
    den = format_poly(atom.den)
    if not (atom.den.is_const() or atom.den.as_symbol() is not None):
        den = f"({den})"
    return f"{num} {op} {den}"


def _format_mono(mono: Monomial, coeff: int) -> str:
    """A monomial with a non-negative coefficient: ``h * 2``, ``oh * S``, ``2 * P``."""
    ordered = sorted(mono, key=lambda a: (not _is_iterish(a), _atom_key(a)))
    parts = []
    for atom in ordered:
        text = _format_atom(atom)
        parts.append(f"({text})" if isinstance(atom, FloorDiv | Mod) and len(ordered) > 1 else text)
    if not parts:
        return str(coeff)
    if coeff == 1:
        return " * ".join(parts)
    if _is_iterish(ordered[0]):
        return " * ".join([*parts, str(coeff)])
    if isinstance(ordered[0], FloorDiv | Mod) and len(ordered) == 1:
        parts = [f"({parts[0]})"]
    return " * ".join([str(coeff), *parts])


def format_poly(poly: Poly) -> str:
    """Source text of a polynomial, e.g. ``oh * S + kh * D - P``."""
    if not poly.terms:
        return "0"
    out = ""
    for i, (mono, coeff) in enumerate(sorted(poly.terms, key=_print_key)):
        text = _format_mono(mono, abs(coeff))
        if i == 0:
            has_div = any(isinstance(a, FloorDiv | Mod) for a in mono)
            out = (f"-({text})" if has_div else "-" + text) if coeff < 0 else text
        else:
            out += (" - " if coeff < 0 else " + ") + text
    return out
