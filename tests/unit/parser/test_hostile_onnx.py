"""Hostile and invalid ONNX models: every one is refused with a one-line `OnnxImportError`
that names the node (or tensor, input, output) and the reason, never a raw Python
exception, and nothing outside a model's data directory is ever read.

The models are built with `onnx.helper` and invalid fields set on the protos directly;
nothing here runs the checker while building them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import mlc
from mlc.interpreters import interpret
from mlc.parser.onnx import OnnxImportError, import_onnx
from mlc.tools import mlc_opt

X = np.arange(64, dtype=np.float32).reshape(4, 16) - 30


def _value(
    name: str, shape: list[int | str] | None = None, dtype: int = TensorProto.FLOAT
) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, [4, 16] if shape is None else shape)


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto] | None = None,
    outputs: list[onnx.ValueInfoProto] | None = None,
    initializers: list[onnx.TensorProto] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [_value("x")] if inputs is None else inputs,
        [_value("y")] if outputs is None else outputs,
        initializers or [],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _relu(x: str = "x", **attrs: object) -> onnx.NodeProto:
    return helper.make_node("Relu", [x], ["y"], name="r1", **attrs)


def _add_weight(weight: onnx.TensorProto) -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["x", "w"], ["y"], name="add1")], initializers=[weight])


def _weight(values: np.ndarray | None = None) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.ones(16, np.float32) if values is None else values, "w")


def _error(model: object, **options: object) -> str:
    """The import's error message, asserted to be one line."""
    with pytest.raises(OnnxImportError) as info:
        import_onnx(model, **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert "Traceback" not in message
    return message


def _one_line_error(model: object, **options: object) -> str:
    message = _error(model, **options)
    assert len(message.splitlines()) == 1, message
    return message


# -- 1. unknown data types --------------------------------------------------------------------


@pytest.mark.parametrize("data_type, shown", [(999, "999"), (0, "UNDEFINED")])
def test_initializer_with_unknown_data_type(data_type: int, shown: str) -> None:
    weight = _weight()
    weight.data_type = data_type
    message = _one_line_error(_add_weight(weight))
    assert "initializer 'w'" in message and f"data type {shown}" in message


def test_graph_input_with_unknown_element_type() -> None:
    x = _value("x")
    x.type.tensor_type.elem_type = 999
    message = _one_line_error(_model([_relu()], inputs=[x]))
    assert "graph input 'x'" in message and "element type 999" in message


def test_constant_node_with_unknown_data_type_names_the_node() -> None:
    value = helper.make_tensor("v", TensorProto.FLOAT, [4, 16], X.reshape(-1).tolist())
    value.data_type = 999
    node = helper.make_node("Constant", [], ["y"], name="c1", value=value)
    message = _one_line_error(_model([node], inputs=[]))
    assert "node 'c1' (Constant), attribute 'value'" in message and "data type 999" in message


# -- 2. names that are not xDSL SSA names -----------------------------------------------------


@pytest.mark.parametrize("name", ["_0", "%0", "_1_2", "0", "x y", "-"])
def test_odd_input_names_import_compile_and_keep_their_onnx_name(name: str) -> None:
    model = _model([_relu(name)], inputs=[_value(name)])
    module = import_onnx(model)
    (out,) = interpret(module, X)
    np.testing.assert_array_equal(out, np.maximum(X, 0))
    compiled = mlc.compile(model, cache=False)
    assert [s.name for s in compiled.inputs] == [name]
    np.testing.assert_array_equal(compiled(X)[0], np.maximum(X, 0))


# -- 3. dimensions too large to be a tensor's --------------------------------------------------


def test_huge_input_dimension() -> None:
    model = _model([_relu()], [_value("x", [2**62, 16])], [_value("y", [2**62, 16])])
    message = _error(model)
    assert "'x'" in message and "dimension 4611686018427387904 is too large" in message


def test_huge_input_shapes_option() -> None:
    message = _error(
        _model([_relu()], [_value("x", ["N", 16])]), input_shapes={"x": [2**40, 2**20]}
    )
    assert "'x'" in message and "too many elements" in message


def test_negative_input_dimension() -> None:
    message = _error(_model([_relu()], [_value("x", [-4, 16])]))
    assert "'x'" in message and "dimension -4 is negative" in message


def test_huge_node_result_names_the_node() -> None:
    shape = onnx.numpy_helper.from_array(np.array([2**30, 2**30], np.int64), "s")
    node = helper.make_node("Expand", ["x", "s"], ["y"], name="e1")
    model = _model([node], [_value("x", [1, 1])], [_value("y", [2**30, 2**30])], [shape])
    message = _error(model)
    assert "'e1' (Expand" in message and "too many elements" in message


def test_huge_initializer_dimension() -> None:
    weight = _weight()
    weight.dims[0] = 2**62
    message = _one_line_error(_add_weight(weight))
    assert "initializer 'w'" in message and "is too large" in message


# -- 4. what onnxruntime refuses ---------------------------------------------------------------


def test_unknown_attribute_names_the_node() -> None:
    message = _one_line_error(_model([_relu(foo=1)]))
    assert "node 'r1' (Relu)" in message and "Unrecognized attribute: foo" in message


def test_duplicate_attribute_names_the_node() -> None:
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr1", alpha=0.1)
    node.attribute.extend([helper.make_attribute("alpha", 0.2)])
    message = _one_line_error(_model([node]))
    assert "node 'lr1' (LeakyRelu)" in message and "'alpha' appeared multiple times" in message


def test_extra_node_input_names_the_node() -> None:
    node = helper.make_node("Relu", ["x", "x"], ["y"], name="r1")
    message = _one_line_error(_model([node]))
    assert "node 'r1' (Relu)" in message and "input size 2" in message


@pytest.mark.parametrize("version", [0, 999, 10**9])
def test_invalid_opset_version(version: int) -> None:
    message = _one_line_error(_model([_relu()], opset=version))
    assert f"opset version {version}" in message


def test_future_ir_version() -> None:
    model = _model([_relu()])
    model.ir_version = 99
    assert "ir_version 99" in _one_line_error(model)


def test_initializer_with_negative_dimension() -> None:
    weight = _weight()
    weight.dims[0] = -1
    message = _one_line_error(_add_weight(weight))
    assert "initializer 'w'" in message and "dimension -1 is negative" in message


def test_declared_output_of_another_type_and_shape() -> None:
    model = _model([_relu()], outputs=[_value("y", [77, 16], TensorProto.INT8)])
    message = _one_line_error(model)
    assert "node 'r1' (Relu)" in message and "'y'" in message
    assert "int8[77,16]" in message and "float32[4,16]" in message


def test_declared_output_of_another_shape() -> None:
    model = _model([_relu()], outputs=[_value("y", [77, 16])])
    message = _one_line_error(model)
    assert "node 'r1' (Relu)" in message and "(4) vs (77)" in message


def test_declared_output_of_another_type_shape_inference_cannot_see() -> None:
    """Reshape to a bound shape input: only the import knows the result."""
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")
    inputs = [_value("x"), _value("s", [2], TensorProto.INT64)]
    model = _model([node], inputs, [_value("y", ["N", 8, 8], TensorProto.FLOAT)])
    message = _one_line_error(model, input_values={"s": np.array([8, 8])})
    assert "node 'rs' (Reshape)" in message and "float32[N,8,8]" in message
    assert "float32[8,8]" in message


def test_declared_output_with_symbolic_or_unknown_dims_is_fine() -> None:
    y = _value("y", ["N", 16])
    y.type.tensor_type.shape.dim[1].Clear()
    module = import_onnx(_model([_relu()], outputs=[y]))
    np.testing.assert_array_equal(interpret(module, X)[0], np.maximum(X, 0))


def test_input_shapes_may_change_a_declared_static_shape() -> None:
    module = import_onnx(_model([_relu()]), input_shapes={"x": [2, 16]})
    np.testing.assert_array_equal(interpret(module, X[:2])[0], np.maximum(X[:2], 0))


# -- 5. external data ------------------------------------------------------------------------


def _external_weight(location: str, length: int = 64) -> onnx.TensorProto:
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[16])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(length))):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    return weight


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Directories A and B, each with a `w.bin` of 16 floats: ones in A, twos in B."""
    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir()
    b.mkdir()
    np.ones(16, np.float32).tofile(a / "w.bin")
    np.full(16, 2, np.float32).tofile(b / "w.bin")
    return a, b


def _save(model: onnx.ModelProto, directory: Path) -> Path:
    path = directory / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _weight_added(module: object) -> np.ndarray:
    return interpret(module, X)[0] - X  # type: ignore[arg-type]


def test_a_path_resolves_external_data_against_its_own_directory(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = dirs
    path = _save(_add_weight(_external_weight("w.bin")), a)
    monkeypatch.chdir(b)
    np.testing.assert_array_equal(_weight_added(import_onnx(os.path.relpath(path))), 1)
    np.testing.assert_array_equal(_weight_added(mlc.import_onnx(path)), 1)
    compiled = mlc.compile(path, cache=False)
    np.testing.assert_array_equal(compiled(X)[0] - X, 1)


def test_mlc_opt_reads_external_data_beside_the_model(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = dirs
    path = _save(_add_weight(_external_weight("w.bin")), a)
    monkeypatch.chdir(b)
    assert mlc_opt.main([os.path.relpath(path)]) == 0
    out = capsys.readouterr().out
    assert "1.000000e+00" in out and "2.000000e+00" not in out


@pytest.mark.parametrize("kind", ["bytes", "proto"])
def test_in_memory_models_need_base_dir(dirs: tuple[Path, Path], kind: str) -> None:
    a, _ = dirs
    model = _add_weight(_external_weight("w.bin"))
    given = model.SerializeToString() if kind == "bytes" else model
    message = _one_line_error(given)
    assert "initializer 'w'" in message and "'w.bin'" in message and "base_dir=" in message
    np.testing.assert_array_equal(_weight_added(import_onnx(given, base_dir=a)), 1)
    np.testing.assert_array_equal(_weight_added(mlc.import_onnx(given, base_dir=str(a))), 1)
    compiled = mlc.compile(given, base_dir=a, cache=False)
    np.testing.assert_array_equal(compiled(X)[0] - X, 1)
    if kind == "proto":  # the caller's proto is left as it was
        assert model.graph.initializer[0].data_location == TensorProto.EXTERNAL


def test_a_path_with_an_explicit_base_dir(dirs: tuple[Path, Path]) -> None:
    a, b = dirs
    path = _save(_add_weight(_external_weight("w.bin")), a)
    np.testing.assert_array_equal(_weight_added(import_onnx(path, base_dir=b)), 2)


@pytest.mark.parametrize(
    "location, reason",
    [
        ("../B/w.bin", "points outside the directory"),
        ("ABSOLUTE", "absolute path"),
        ("/dev/zero", "absolute path"),
        ("link.bin", "symbolic link"),
        ("missing.bin", "not regular file"),
        ("fifo.bin", "not regular file"),
        ("short.bin", "exceeds available data"),
    ],
)
def test_external_data_outside_the_base_dir_is_never_read(
    dirs: tuple[Path, Path], location: str, reason: str
) -> None:
    a, b = dirs
    (a / "link.bin").symlink_to(b / "w.bin")
    os.mkfifo(a / "fifo.bin")
    (a / "short.bin").write_bytes(b"\0" * 8)
    if location == "ABSOLUTE":
        location = str(b / "w.bin")
    model = _add_weight(_external_weight(location))
    for given, options in (
        (_save(model, a), {}),
        (model.SerializeToString(), {"base_dir": a}),
        (model, {"base_dir": a}),
    ):
        message = _one_line_error(given, **options)
        assert "initializer 'w'" in message and reason in message, message


def test_external_data_of_a_constant_node_names_the_node(dirs: tuple[Path, Path]) -> None:
    a, _ = dirs
    node = helper.make_node("Constant", [], ["c"], name="c1", value=_external_weight("../B/w.bin"))
    add = helper.make_node("Add", ["x", "c"], ["y"], name="add1")
    message = _one_line_error(_model([node, add]), base_dir=a)
    assert "node 'c1' (Constant)" in message and "points outside the directory" in message


def test_a_name_that_is_not_utf8_is_an_import_error() -> None:
    """Found by the ONNX fuzzer: protobuf hands such a name over as bytes (a TypeError in
    the importer's name handling)."""
    relu = helper.make_node("Relu", ["x"], ["name"])
    graph = helper.make_graph(
        [relu],
        "g",
        [_value("x", [2])],
        [helper.make_tensor_value_info("name", TensorProto.FLOAT, [2])],
    )
    data = helper.make_model(graph).SerializeToString().replace(b"name", b"n\xffme")
    with pytest.raises(OnnxImportError, match="not valid UTF-8"):
        import_onnx(data)


def _constant_of_shape_plus_x(shape: list[int]) -> onnx.ModelProto:
    fill = onnx.numpy_helper.from_array(np.array([1.5], np.float32))
    nodes = [
        helper.make_node("ConstantOfShape", ["s"], ["c"], value=fill),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [_value("x", [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [onnx.numpy_helper.from_array(np.array(shape, np.int64), "s")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_large_constant_of_shape_stays_a_broadcast_scalar() -> None:
    """ConstantOfShape [2^20, 2^12] allocated 16 GiB at import: above the fold limit it is a
    one-element constant and a graph.expand, filled only when the model runs."""
    module = import_onnx(_constant_of_shape_plus_x([2**20, 2**12]))
    text = str(module)
    assert "graph.expand" in text and "dense<1.500000e+00> : tensor<1x1xf32>" in text
    small = _constant_of_shape_plus_x([3, 1 << 19])  # still above the limit: compiled
    (y,) = mlc.compile(small)(np.array([1.0], np.float32))
    assert y.shape == (3, 1 << 19) and np.all(y == 2.5)
