"""A reshape's copy reads the input through `floordiv` / `mod` of the output's index; where
those only split and rejoin a row-major index the address is linear in the lane, and the
copy loads whole vectors (`flat_address`; before, 1x272x28x28 -> 1x4x68x784 copied one
float at a time at 12-18 GB/s, now LLVM makes it a memcpy)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xdsl.ir.affine import AffineExpr

import mlc
from mlc.lowering.tl_vector_to_llvm import coefficient, flat_address
from mlc.parser.mlir import parse_module


def _reshape_module(src: tuple[int, ...], dst: tuple[int, ...]):  # type: ignore[no-untyped-def]
    a = f"tensor<{'x'.join(map(str, src))}xf32>"
    b = f"tensor<{'x'.join(map(str, dst))}xf32>"
    return parse_module(
        mlc.context(),
        f"""func.func @f(%x: {a}) -> {b} {{
          %y = graph.reshape %x : ({a}) -> {b}
          func.return %y : {b}
        }}""",
    )


def test_split_and_rejoin_fold_to_the_index() -> None:
    h = AffineExpr.dimension(0)
    address = flat_address([h // 28, h % 28], [28, 1])
    assert coefficient(address, [1]) == 1  # (h floordiv 28) * 28 + h mod 28 = h
    unrelated = flat_address([h // 28, h % 7], [28, 1])
    assert coefficient(unrelated, [1]) is None


def test_channel_shuffle_reshape_loads_vectors() -> None:
    module = _reshape_module((1, 272, 28, 28), (1, 4, 68, 784))
    compiled = mlc.compile(module, cache=False)
    ir = compiled.llvm_ir  # whole vectors, which LLVM turns into one memcpy
    assert "llvm.memcpy" in ir or "load <8 x float>" in ir or "load <16 x float>" in ir
    x = np.random.default_rng(0).standard_normal((1, 272, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(compiled(x)[0], x.reshape(1, 4, 68, 784))


def _factorizations(n: int) -> st.SearchStrategy[tuple[int, ...]]:
    divisors = [d for d in range(1, n + 1) if n % d == 0]

    @st.composite
    def shape(draw: st.DrawFn) -> tuple[int, ...]:
        dims, rest = [], n
        for _ in range(draw(st.integers(0, 3))):
            d = draw(st.sampled_from([d for d in divisors if rest % d == 0]))
            dims.append(d)
            rest //= d
        return (*dims, rest)

    return shape()


@settings(max_examples=15, deadline=None)
@given(_factorizations(2 * 3 * 4 * 28), _factorizations(2 * 3 * 4 * 28))
def test_any_reshape_copies_exactly(src: tuple[int, ...], dst: tuple[int, ...]) -> None:
    x = np.arange(np.prod(src), dtype=np.float32).reshape(src)
    (got,) = mlc.compile(_reshape_module(src, dst), cache=False)(x)
    np.testing.assert_array_equal(got, x.reshape(dst))


@pytest.mark.parametrize("dst", [(1, 4, 68, 784), (272, 784), (1, 272 * 28, 28)])
def test_compiled_reshapes_match_numpy(dst: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).standard_normal((1, 272, 28, 28)).astype(np.float32)
    (got,) = mlc.compile(_reshape_module((1, 272, 28, 28), dst), cache=False)(x)
    np.testing.assert_array_equal(got, x.reshape(dst))
