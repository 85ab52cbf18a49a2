"""Run-time checks (`tl.check`): compiled gathers never read outside their table, and a call
with an index out of range fails with a clear error, as the interpreter and onnxruntime do
(issue #16: indices 10, -11, 1000, INT64_MIN returned garbage rows; 10^6 and 2^40 crashed)."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import mlc
from mlc.dialects.tl import RuntimeCheckError
from mlc.interpreters.tl import run_buffers
from mlc.lowering.graph_to_tl import ConvertGraphToTlPass
from mlc.registry import make_context

TABLE = np.arange(30, dtype=np.float32).reshape(10, 3)
BAD = [10, -11, 1000, -(2**63), 10**6, 2**40, 2**63 - 1]


def gather_model(op: str = "Gather", axis: int = 0, index_type: int = TensorProto.INT64):
    shape = [4] if op == "Gather" else [4, 3]
    out = [4, 3]
    if op == "Gather" and axis == 1:
        shape, out = [2], [10, 2]
    graph = helper.make_graph(
        [helper.make_node(op, ["table", "idx"], ["y"], axis=axis)],
        "g",
        [helper.make_tensor_value_info("idx", index_type, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        [numpy_helper.from_array(TABLE, "table")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module")
def gather():
    return mlc.compile(gather_model())


def test_in_range_indices_match_numpy(gather) -> None:
    idx = np.array([0, 9, -1, -10], np.int64)
    (y,) = gather(idx)
    np.testing.assert_array_equal(y, TABLE[idx])


@pytest.mark.parametrize("bad", BAD)
def test_out_of_range_index_raises(gather, bad: int) -> None:
    with pytest.raises(RuntimeCheckError, match=r"graph.gather .*out of range \[-10, 10\)"):
        gather(np.array([1, bad, 2, 3], np.int64))
    (y,) = gather(np.array([1, 2, 3, 4], np.int64))  # the status word was cleared
    np.testing.assert_array_equal(y, TABLE[[1, 2, 3, 4]])


def test_gather_on_axis_1_with_int32_indices() -> None:
    model = mlc.compile(gather_model(axis=1, index_type=TensorProto.INT32))
    (y,) = model(np.array([2, -3], np.int32))
    np.testing.assert_array_equal(y, TABLE[:, [2, -3]])
    with pytest.raises(RuntimeCheckError, match=r"axis 1, size 3"):
        model(np.array([3, 0], np.int32))


def test_gather_elements_checks_its_indices() -> None:
    model = mlc.compile(gather_model("GatherElements"))
    idx = np.array([[0, 9, -1], [2, 2, 2], [-10, 0, 5], [1, 1, 1]], np.int64)
    (y,) = model(idx)
    np.testing.assert_array_equal(y, np.take_along_axis(TABLE, idx % 10, axis=0))
    idx[2, 1] = 2**40
    with pytest.raises(RuntimeCheckError, match="graph.gather_elements"):
        model(idx)


def test_models_without_checks_have_no_status_word() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    model = mlc.compile(helper.make_model(graph))
    assert model.check_messages == []
    assert model._status is None


def test_a_cached_model_keeps_its_checks() -> None:
    mlc.compile(gather_model())
    again = mlc.compile(gather_model())
    assert again.cache_hits > 0
    with pytest.raises(RuntimeCheckError):
        again(np.array([0, 0, 0, 10], np.int64))


def test_the_exported_library_checks_and_documents_its_status_word(gather, tmp_path) -> None:
    lib = gather.export(tmp_path / "gat.so")
    header = lib.header.read_text()
    assert "extern int64_t gat_status;" in header
    assert "1: graph.gather (axis 0, size 10): an index is out of range [-10, 10)" in header
    loaded = mlc.load(lib.path)
    assert loaded.signature["checks"]["status"] == "gat_status"
    with pytest.raises(RuntimeCheckError, match="out of range"):
        loaded(np.array([0, 2**40, 0, 0], np.int64))
    (y,) = loaded(np.array([3, 2, 1, 0], np.int64))
    np.testing.assert_array_equal(y, TABLE[[3, 2, 1, 0]])


def test_concurrent_good_and_bad_calls_are_told_apart(gather) -> None:
    """The status word is the module's: calls are serialized, so a failure is reported to
    the call that made it and to no other."""
    good, bad = np.array([1, 2, 3, 4], np.int64), np.array([1, 2, 3, 40], np.int64)
    errors: list[str] = []

    def worker(k: int) -> None:
        for i in range(100):
            failing = (i + k) % 3 == 0
            try:
                (y,) = gather(bad if failing else good)
                if failing:
                    errors.append("a bad call returned")
                elif not np.array_equal(y, TABLE[good]):
                    errors.append("wrong rows")
            except RuntimeCheckError:
                if not failing:
                    errors.append("a good call raised")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_tl_interpreter_fails_the_check_like_the_graph_interpreter() -> None:
    module = mlc.import_onnx(gather_model())
    idx = np.array([0, 1, 2, 10], np.int64)
    with pytest.raises(IndexError, match="out of range"):
        mlc.interpret(module, idx)
    ConvertGraphToTlPass().apply(make_context(), module)
    with pytest.raises(RuntimeCheckError, match="out of range"):
        run_buffers(module, idx)
    ok = np.array([0, 1, 2, -1], np.int64)
    np.testing.assert_array_equal(run_buffers(module, ok)[-1], TABLE[ok])


_OOM_CHILD = """
import resource, sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper
import mlc

shape = [1 << 16, 1 << 12]  # 1 GiB of float32, read by two reductions: materialized
fill = numpy_helper.from_array(np.array([1.0], np.float32))
nodes = [
    helper.make_node("ConstantOfShape", ["s"], ["c"], value=fill),
    helper.make_node("Add", ["x", "c"], ["t"]),
    helper.make_node("ReduceSum", ["t"], ["a"], keepdims=0),
    helper.make_node("ReduceMax", ["t"], ["b"], keepdims=0),
    helper.make_node("Add", ["a", "b"], ["y"]),
]
graph = helper.make_graph(
    nodes, "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    [numpy_helper.from_array(np.array(shape, np.int64), "s")],
)
model = mlc.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
try:
    model(np.array([1.0], np.float32))
except MemoryError as e:
    print("MemoryError:", e)
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("after:", model(np.array([1.0], np.float32))[0])
    sys.exit(0)
print("no error")
sys.exit(3)
"""


def test_a_failed_allocation_is_a_memory_error_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Native code checks every aligned_alloc: with the address space capped below a
    model's 1 GiB intermediate, the call raises MemoryError (the entry returns the failure,
    freeing what it allocated) and works again once memory is there. In a child process:
    the cap is process-wide."""
    import os
    import subprocess
    import sys

    script = tmp_path / "oom.py"
    script.write_text(_OOM_CHILD)
    env = {**os.environ, "MLC_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(
        r"MemoryError: @main: out of memory: cannot allocate (\d+) bytes", done.stdout
    )
    assert found, done.stdout  # the 1 GiB intermediate and the reductions' partials
    assert 1 << 30 < int(found.group(1)) < (1 << 30) + 4096
    assert "after:" in done.stdout
