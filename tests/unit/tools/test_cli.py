"""The command-line tools: `mlc import/run/demo` and `mlc-opt`, including bad input."""

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from mlc.parser.mlir import parse_module
from mlc.registry import make_context
from mlc.tools import mlc as mlc_cli
from mlc.tools import mlc_opt

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _relu_model(path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_import_then_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, ir = tmp_path / "relu.onnx", tmp_path / "relu.mlir"
    _relu_model(model)
    assert mlc_cli.main(["import", str(model), "-o", str(ir)]) == 0
    assert "graph.relu" in ir.read_text()
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.save(tmp_path / "x.npy", x)
    out_dir = tmp_path / "out"
    assert (
        mlc_cli.main(
            ["run", str(ir), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(out_dir)]
        )
        == 0
    )
    np.testing.assert_array_equal(np.load(out_dir / "output0.npy"), np.maximum(x, 0))


def test_run_rejects_wrong_input_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    np.save(tmp_path / "x.npy", np.zeros((3, 3), np.float32))
    assert mlc_cli.main(["run", str(model), "--input", f"x={tmp_path / 'x.npy'}"]) == 1
    err = capsys.readouterr().err
    assert "input #0 of @main must be float32[2, 3], got float32[3, 3]" in err
    assert "Traceback" not in err


def test_run_names_missing_and_unknown_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    assert mlc_cli.main(["run", str(model)]) == 1
    assert "missing input(s) ['x']" in capsys.readouterr().err
    np.save(tmp_path / "z.npy", np.zeros((2, 3), np.float32))
    assert mlc_cli.main(["run", str(model), "--input", f"z={tmp_path / 'z.npy'}"]) == 1
    assert "unknown input(s) ['z']" in capsys.readouterr().err


def test_import_of_a_corrupt_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 definitely not protobuf \xff\xfe")
    assert mlc_cli.main(["import", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlc: error:") and "not a valid ONNX model" in err
    assert len(err.splitlines()) == 1
    assert mlc_cli.main(["import", str(tmp_path / "missing.onnx")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_unsupported_nodes_are_listed_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("FancyOp", ["x"], ["a"], name="first"),
        helper.make_node("Relu", ["x"], ["b"], name="fine"),
        helper.make_node("Gelu", ["b"], ["c"], name="second", approximate="cubic"),
        helper.make_node("Add", ["a", "c"], ["y"], name="downstream"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    assert mlc_cli.main(["import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "2 unsupported node(s)" in err
    assert "node 'first' (FancyOp, opset 20): unknown operator" in err
    assert "node 'second' (Gelu, opset 20): attribute approximate='cubic' is not supported" in err
    assert "downstream" not in err


def test_dynamic_input_shape_needs_a_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert mlc_cli.main(["import", str(path)]) == 1
    assert "dynamic dimension 'batch'" in capsys.readouterr().err
    assert mlc_cli.main(["import", str(path), "--input-shape", "x=4x3"]) == 0
    assert "tensor<4x3xf32>" in capsys.readouterr().out


def test_mlc_opt_reports_location_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad.mlir"
    src.write_text(
        "func.func @f(%x: tensor<2xf32>) {\n"
        "  %y = graph.exp %x : (tensor<2xf32>) -> tensor<4xf32>\n"
        "  func.return\n}\n"
    )
    assert mlc_opt.main([str(src)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"{src}:2:3: error: 'graph.exp' op result type(s) should be tensor<2xf32>"
    )
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_mlc_opt_unknown_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "ok.mlir"
    src.write_text("func.func @f() {\n  func.return\n}\n")
    assert mlc_opt.main([str(src), "-p", "no-such-pass"]) == 1
    assert "no-such-pass" in capsys.readouterr().err


def test_imported_cnn_round_trips_through_mlc_opt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mlc import of the bundled CNN, then custom and generic syntax re-parse identically."""
    ir = tmp_path / "cnn.mlir"
    assert mlc_cli.main(["import", str(EXAMPLES / "tiny_resnet.onnx"), "-o", str(ir)]) == 0
    text = ir.read_text()
    assert "graph.conv" in text
    capsys.readouterr()
    assert mlc_opt.main([str(ir)]) == 0
    custom = capsys.readouterr().out
    assert mlc_opt.main([str(ir), "--print-op-generic"]) == 0
    generic = capsys.readouterr().out
    generic_file = tmp_path / "generic.mlir"
    generic_file.write_text(generic)
    assert mlc_opt.main([str(generic_file)]) == 0
    assert capsys.readouterr().out == custom
    ctx = make_context()
    assert str(parse_module(ctx, custom)) == str(parse_module(ctx, text))


def test_demo_matches_onnxruntime(capsys: pytest.CaptureFixture[str]) -> None:
    assert mlc_cli.main(["demo", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "results match onnxruntime" in out


def test_run_compiles_natively_unless_interpret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    np.save(tmp_path / "x.npy", x)
    for flags, label in (([], "native: compile"), (["--interpret"], "reference interpreter")):
        out_dir = tmp_path / f"out{len(flags)}"
        argv = ["run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir"]
        assert mlc_cli.main([*argv, str(out_dir), *flags]) == 0
        assert label in capsys.readouterr().out
        np.testing.assert_array_equal(np.load(out_dir / "output0.npy"), np.maximum(x, 0))


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (`cc`) on PATH to link")
def test_compile_writes_a_library_and_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlc

    model = tmp_path / "relu.onnx"
    _relu_model(model)
    lib = tmp_path / "relu.so"
    assert mlc_cli.main(["compile", str(model), "-o", str(lib)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {lib}" in out and "relu_run(float32[2, 3]) -> (float32[2, 3])" in out
    assert "int64_t relu_run(const float *x, float *y);" in (tmp_path / "relu.h").read_text()
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    (y,) = mlc.load(lib)(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_compile_an_object_for_another_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    obj = tmp_path / "relu_arm.o"
    triple = "aarch64-unknown-linux-gnu"
    code = mlc_cli.main(["compile", str(model), "-o", str(obj), "--triple", triple])
    err = capsys.readouterr().err
    if code != 0 and "unknown target triple" in err:
        pytest.skip("LLVM here has no AArch64 target")
    assert code == 0, err
    data = obj.read_bytes()
    assert data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == 183  # AArch64
    assert (tmp_path / "relu_arm.h").exists()
    # a library needs linking, which mlc cannot do for another target
    assert (
        mlc_cli.main(["compile", str(model), "-o", str(tmp_path / "r.so"), "--triple", triple]) == 1
    )
    err = capsys.readouterr().err
    assert "use -o NAME.o" in err and len(err.strip().splitlines()) == 1


def test_compile_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "relu.onnx"
    _relu_model(model)
    cases = [
        (["compile", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "m.so")], "no such file"),
        (
            ["compile", str(model), "-o", str(tmp_path / "m.o"), "--triple", "nonsense-cpu-os"],
            "unknown target triple 'nonsense-cpu-os'",
        ),
        (["compile", str(model), "-o", str(tmp_path / "no" / "m.so")], "no such directory"),
    ]
    for argv, message in cases:
        assert mlc_cli.main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


def _forest_with_zipmap(path: Path, labels: list[str]) -> None:
    """One stump over a symbolic batch, string labels, ZipMap'd probabilities (what
    skl2onnx exports by default)."""
    ml = "ai.onnx.ml"
    tree = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "p"], domain=ml,
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_values=[0.5, 0.0, 0.0],
        nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        class_treeids=[0, 0, 0, 0], class_nodeids=[1, 1, 2, 2], class_ids=[0, 1, 0, 1],
        class_weights=[0.75, 0.25, 0.25, 0.75], classlabels_strings=labels,
    )  # fmt: skip
    zipmap = helper.make_node(
        "ZipMap", ["p"], ["probabilities"], domain=ml, classlabels_strings=labels
    )
    seq = helper.make_sequence_type_proto(
        helper.make_map_type_proto(
            TensorProto.STRING, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
        )
    )
    graph = helper.make_graph(
        [tree, zipmap], "forest",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
         helper.make_value_info("probabilities", seq)],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(ml, 1)]
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))


def test_run_takes_a_symbolic_batch_from_the_input_and_saves_labels_and_zipmaps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --input-shape: the .npy's shape fills the dynamic batch; string labels saved
    without pickle, ZipMap rows as JSON."""
    import json

    model = tmp_path / "forest.onnx"
    _forest_with_zipmap(model, ["no", "yes"])
    np.save(tmp_path / "x.npy", np.array([[0.2, 0.0], [0.9, 0.0], [0.5, 1.0]], np.float32))
    out = tmp_path / "out"
    argv = ["run", str(model), "--input", f"X={tmp_path / 'x.npy'}", "--output-dir", str(out)]
    assert mlc_cli.main(argv) == 0
    assert "3 dicts" in capsys.readouterr().out
    assert np.load(out / "output0.npy", allow_pickle=False).tolist() == ["no", "yes", "no"]
    rows = json.loads((out / "output1.json").read_text())
    assert rows == [{"no": 0.75, "yes": 0.25}, {"no": 0.25, "yes": 0.75}, {"no": 0.75, "yes": 0.25}]
