"""The compile cache and per-kernel code generation: hits are bit-identical to a cold
compile, a corrupted entry is rebuilt, concurrent processes both succeed, any key input
misses, identical kernels are compiled once, and the job count does not change the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc.benchmarks.models import mlp
from mlc.registry import make_context
from mlc.targets.compile_cache import CompileCache, object_key
from mlc.targets.compiled import compile_model
from mlc.testing.coverage import covers
from mlc.testing.strategies import graph_programs
from mlc.transforms.loops.outline import KERNEL_PREFIX, TlOutlineKernelsPass

ROOT = Path(__file__).resolve().parents[3]
CNN = ROOT / "examples" / "tiny_resnet.onnx"
X = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


def _kernel_calls(llvm_dialect: str) -> dict[str, int]:
    """Kernel function (parallel bodies aside) -> how many calls the module makes of it."""
    roots = {
        line.split("@")[1].split("(")[0]
        for line in llvm_dialect.splitlines()
        if line.lstrip().startswith(f"llvm.func @{KERNEL_PREFIX}") and "_par" not in line
    }
    return {name: llvm_dialect.count(f"llvm.call @{name}(") for name in sorted(roots)}


def test_a_hit_is_bit_identical_to_a_cold_compile(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    cold = compile_model(CNN)
    assert cold.cache_hits == 0 and cold.object_count > 1
    warm = compile_model(CNN)
    assert warm.cache_hits == warm.object_count == cold.object_count
    np.testing.assert_array_equal(warm(X)[0], cold(X)[0])
    off = compile_model(CNN, cache=False)
    assert off.cache_hits == 0
    np.testing.assert_array_equal(off(X)[0], cold(X)[0])


def test_a_corrupted_entry_is_rebuilt(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    cold = compile_model(CNN)
    entries = sorted(tmp_path.glob("*/*.o"))
    assert len(entries) == cold.object_count
    data = entries[0].read_bytes()
    entries[0].write_bytes(data[: len(data) // 2])  # truncated
    entries[1].write_bytes(
        data[:-1] + bytes([data[-1] ^ 0xFF]) if entries[1] != entries[0] else data
    )
    warm = compile_model(CNN)
    assert warm.cache_hits <= cold.object_count - 1
    np.testing.assert_array_equal(warm(X)[0], cold(X)[0])
    assert len(list(tmp_path.glob("*/*.o"))) == cold.object_count


def test_a_warm_model_links_its_cached_objects_only(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The second compile of a model skips import and passes: no pipeline stage in its
    timings, outputs bit-identical, the llvm dialect and export still there on demand; a
    corrupted record or constant is a miss (compiled and stored again); other options
    are another model."""
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    cold = compile_model(CNN)
    warm = compile_model(CNN)
    assert "convert-graph-to-tl" in cold.timings.seconds
    assert "convert-graph-to-tl" not in warm.timings.seconds
    np.testing.assert_array_equal(warm(X)[0], cold(X)[0])
    assert [s.shape for s in warm.inputs] == [s.shape for s in cold.inputs]
    assert warm.inputs[0].name == cold.inputs[0].name == "image"
    assert warm.workspace_bytes == cold.workspace_bytes
    assert warm.llvm_dialect == cold.llvm_dialect
    for kind in ("model", "const"):
        for entry in tmp_path.glob(f"*/*.{kind}"):
            entry.write_bytes(entry.read_bytes()[:-3])
    again = compile_model(CNN)
    assert "convert-graph-to-tl" in again.timings.seconds
    np.testing.assert_array_equal(again(X)[0], cold(X)[0])
    assert "convert-graph-to-tl" not in compile_model(CNN).timings.seconds
    other = compile_model(CNN, vector_math=False)
    assert "convert-graph-to-tl" in other.timings.seconds


def test_cache_get_rejects_garbage_and_evicts_lru(tmp_path: Path) -> None:
    cache = CompileCache(tmp_path, max_bytes=3000)
    for i in range(5):
        cache.put(f"{i:02d}" + "a" * 62, bytes([i]) * 1000)
    assert cache.info().entries <= 2  # cap: ~1 KiB entries, 3000 bytes
    assert cache.get("04" + "a" * 62) == bytes([4]) * 1000
    path = tmp_path / "zz" / ("zz" + "b" * 62 + ".o")
    path.parent.mkdir()
    path.write_bytes(b"not an object")
    assert cache.get("zz" + "b" * 62) is None and not path.exists()
    assert cache.clear() >= 1 and cache.info().entries == 0


def test_every_key_input_changes_the_key() -> None:
    base = ("define void @f() { ret void }", "x86_64-unknown-linux-gnu", "znver3", "+avx2", 3)
    keys = {object_key(*base)}
    for i, other in enumerate(("; other", "aarch64-unknown-linux-gnu", "skylake", "-avx2", 2)):
        changed = list(base)
        changed[i] = other if i else base[0] + other
        keys.add(object_key(*changed))  # type: ignore[arg-type]
    assert len(keys) == 6
    import mlc

    old = mlc.__version__
    try:
        mlc.__version__ = old + ".dev1"
        assert object_key(*base) not in keys
    finally:
        mlc.__version__ = old


def test_two_processes_compiling_at_once_both_succeed(tmp_path: Path) -> None:
    code = (
        f"import numpy as np, mlc; m = mlc.compile({str(CNN)!r}); "
        "print(float(m(np.ones((1,3,32,32), np.float32))[0].sum()))"
    )
    env = dict(os.environ, MLC_CACHE_DIR=str(tmp_path))
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]


def test_identical_kernels_are_compiled_once() -> None:
    """An MLP with two identical hidden layers (16 -> 16, bias, Relu): their kernels are
    one function called twice; the output layer (no Relu) has its own."""
    case = mlp(4, (16, 16, 16, 16))
    model = compile_model(case.model, cache=False)
    calls = _kernel_calls(model.llvm_dialect)
    assert 2 in calls.values(), calls
    (y,) = model(*case.inputs)
    np.testing.assert_allclose(y, case.numpy_fn(*case.inputs)[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_job_count_does_not_change_the_code(jobs: int) -> None:
    from mlc.targets.codegen import compile_objects
    from mlc.targets.compiled import lower_model

    lowered = lower_model(CNN)
    a = compile_objects(lowered.parts, cache=None, jobs=1)
    b = compile_objects(lowered.parts, cache=None, jobs=jobs)
    assert a.objects == b.objects


@covers("tl-outline-kernels")
@settings(max_examples=20)
@given(graph_programs(), st.booleans())
def test_outlining_preserves_semantics(program, dedupe_twice: bool) -> None:  # type: ignore[no-untyped-def]
    """Random graph programs, their tl loop nests outlined into (shared) kernel functions:
    interpreted results equal the unoutlined module's, and compiled ones the interpreter's."""
    import mlc
    from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
    from mlc.lowering.tl_kernel_to_loops import ConvertTlKernelToLoopsPass
    from mlc.targets.pipeline import TlDefaultSchedulePass

    ctx = make_context()
    module = program.module.clone()
    for p in (ConvertGraphToTlPass(), TlDefaultSchedulePass(), ConvertTlKernelToLoopsPass()):
        p.apply(ctx, module)
    want = mlc.interpret(module, *program.inputs)
    TlOutlineKernelsPass().apply(ctx, module)
    if dedupe_twice:  # idempotent: kernel functions are not outlined again
        TlOutlineKernelsPass().apply(ctx, module)
    got = mlc.interpret(module, *program.inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    native = compile_model(program.module, cache=False)(*program.inputs)
    for g, w in zip(native, want):
        if np.issubdtype(np.asarray(w).dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
        else:
            np.testing.assert_array_equal(g, w)


def test_models_with_external_data_are_not_cached_whole(tmp_path: Path) -> None:
    """The key covers the .onnx bytes only: a model whose weights live in another file
    gets no model-level key (its kernels are still cached)."""
    import onnx

    from mlc.targets.model_cache import model_key

    model = mlp(4, (16, 16, 16, 16)).model
    assert model_key(model, {}) is not None
    path = tmp_path / "m.onnx"
    onnx.save_model(model, path, save_as_external_data=True, size_threshold=0)
    assert model_key(str(path), {}) is None
    assert model_key(str(tmp_path / "missing.onnx"), {}) is None


_UNARY = ["relu", "tanh", "sigmoid", "exp"]


@st.composite
def repeated_subgraphs(draw: st.DrawFn) -> tuple[str, list[np.ndarray], int]:
    """`y = block(x0) + block(x1) + block'(x2)`: `block` (a matmul with a constant weight,
    then a chain of unary ops and a constant add) twice on same-shaped inputs, and
    `block'` the same block with one change (another constant, another op, or another
    width): a repeat and a near-repeat. Returns the IR, inputs and how many distinct
    blocks there are (2)."""
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 9)), draw(st.integers(1, 20))
    ops = draw(st.lists(st.sampled_from(_UNARY), min_size=1, max_size=3))
    change = draw(st.sampled_from(["constant", "op", "width"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))

    def literal(a: np.ndarray) -> str:
        if a.ndim == 1:
            return "[" + ", ".join(f"{v:.3f}" for v in a) + "]"
        return "[" + ", ".join(literal(row) for row in a) + "]"

    def dense(shape: tuple[int, ...]) -> str:
        values = literal(rng.uniform(-1, 1, shape))
        return f"dense<{values}> : tensor<{'x'.join(map(str, shape))}xf32>"

    w, b = dense((k, n)), dense((n,))
    lines = []

    def block(x: str, tag: str, ops_: list[str], bias: str, kk: int) -> str:
        t_in, t = f"tensor<{m}x{kk}xf32>", f"tensor<{m}x{n}xf32>"
        weight = w if kk == k else dense((kk, n))
        lines.append(f"  %w{tag} = graph.constant {weight}")
        lines.append(f"  %b{tag} = graph.constant {bias}")
        lines.append(
            f"  %mm{tag} = graph.matmul {x}, %w{tag} : ({t_in}, tensor<{kk}x{n}xf32>) -> {t}"
        )
        cur = f"%mm{tag}"
        for i, op in enumerate(ops_):
            lines.append(f"  %u{tag}{i} = graph.{op} {cur} : ({t}) -> {t}")
            cur = f"%u{tag}{i}"
        lines.append(f"  %o{tag} = graph.add {cur}, %b{tag} : ({t}, tensor<{n}xf32>) -> {t}")
        return f"%o{tag}"

    k2 = k + 1 if change == "width" else k
    ops2 = [*ops[:-1], _UNARY[(_UNARY.index(ops[-1]) + 1) % 4]] if change == "op" else ops
    b2 = dense((n,)) if change == "constant" else b
    y0, y1 = block("%x0", "a", ops, b, k), block("%x1", "b", ops, b, k)
    y2 = block("%x2", "c", ops2, b2, k2)
    t = f"tensor<{m}x{n}xf32>"
    lines.append(f"  %s = graph.add {y0}, {y1} : ({t}, {t}) -> {t}")
    lines.append(f"  %y = graph.add %s, {y2} : ({t}, {t}) -> {t}")
    args = f"%x0: tensor<{m}x{k}xf32>, %x1: tensor<{m}x{k}xf32>, %x2: tensor<{m}x{k2}xf32>"
    text = f"func.func @main({args}) -> {t} {{\n" + "\n".join(lines)
    text += f"\n  func.return %y : {t}\n}}\n"
    inputs = [rng.uniform(-1, 1, (m, kk)).astype(np.float32) for kk in (k, k, k2)]
    return text, inputs, 2


@settings(max_examples=15)
@given(repeated_subgraphs())
def test_only_identical_kernels_are_shared(case: tuple[str, list[np.ndarray], int]) -> None:
    """Repeated and near-repeated subgraphs compile to the interpreter's results: a
    near-repeat (another constant, op or width) never borrows the repeat's kernel."""
    import mlc
    from mlc.parser.mlir import parse_module

    text, inputs, _ = case
    module = parse_module(make_context(), text)
    want = mlc.interpret(module, *inputs)
    model = compile_model(module, cache=False, layout=None)
    (got,) = model(*inputs)
    np.testing.assert_allclose(got, want[0], rtol=1e-4, atol=1e-5)
    assert max(_kernel_calls(model.llvm_dialect).values()) >= 2  # the repeat


def test_a_forked_child_compiles_with_threads_of_its_own() -> None:
    """The code-generation threads are per process: a child forked after a compile gets
    new ones instead of waiting on its parent's (which it does not have). The child only
    compiles: running OpenMP code in a child forked after OpenMP ran is libgomp's own
    limitation."""
    import multiprocessing

    parent = compile_model(CNN, cache=False, jobs=2)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        count = pool.apply_async(_compile_in_child).get(timeout=300)
    assert count == parent.object_count


def _compile_in_child() -> int:
    return compile_model(CNN, cache=False, jobs=2).object_count


def test_editing_mlc_source_misses_the_model_cache(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A development checkout whose schedules or passes changed must not get the model
    compiled by the old code: mlc's source fingerprint is in the key."""
    from mlc.targets import model_cache

    model = mlp(4, (16, 16, 16, 16)).model
    before = model_cache.model_key(model, {})
    assert model_cache.code_fingerprint() == model_cache.code_fingerprint()  # stable
    monkeypatch.setattr(model_cache, "code_fingerprint", lambda: "edited")
    assert model_cache.model_key(model, {}) != before


def test_constants_are_stored_under_their_digest_and_checked_against_it(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A constant's name is the SHA-256 of its bytes (stored without hashing them again);
    a constant entry whose bytes are whole but not the named ones is a miss, and a digest
    given wrongly to `put` reads as a corrupted entry, never as other bytes."""
    import hashlib

    from mlc.targets.compile_cache import _HEADER, MAGIC
    from mlc.targets.llvm_emit import CONSTANT_PREFIX, constant_digest

    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))
    cold = compile_model(CNN)
    consts = sorted(tmp_path.glob("*/*.const"))
    assert consts
    for entry in consts:
        name = entry.name.removesuffix(".const")
        payload = entry.read_bytes()[_HEADER.size :]
        assert name.startswith(CONSTANT_PREFIX)
        assert constant_digest(name) == hashlib.sha256(payload).digest()
    other = bytes(b ^ 1 for b in consts[0].read_bytes()[_HEADER.size :])  # well-formed
    consts[0].write_bytes(_HEADER.pack(MAGIC, len(other), hashlib.sha256(other).digest()) + other)
    again = compile_model(CNN)
    assert "convert-graph-to-tl" in again.timings.seconds  # a miss, compiled again
    np.testing.assert_array_equal(again(X)[0], cold(X)[0])

    cache = CompileCache(tmp_path / "c")
    cache.put("ab" + "c" * 62, b"bytes", "const", digest=hashlib.sha256(b"other").digest())
    assert cache.get("ab" + "c" * 62, "const") is None
    assert constant_digest("mlc_const_xyz") is None and constant_digest("w") is None
