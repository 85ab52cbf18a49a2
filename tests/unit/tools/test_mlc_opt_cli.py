"""`mlc-opt` behaves like mlir-opt / xdsl-opt: stdin, pipelines, diagnostics, help.

Every user error is one line on stderr with exit code 1 and never a traceback; a bug in
mlc is an `internal error` with exit code 2.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from mlc.tools import mlc_opt
from mlc.tools.opt_pipeline import PipelineError, describe_type, unwrap_mlir_pipeline

RELU = """\
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = graph.relu %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return %r : tensor<4xf32>
}
"""

KERNEL = """\
func.func @k(%x: memref<8xf32>, %y: memref<8xf32>) {
  tl.kernel "relu" iterators(i: 8 parallel) ins(%x[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}
"""

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def relu(tmp_path: Path) -> Path:
    path = tmp_path / "relu.mlir"
    path.write_text(RELU)
    return path


def _run(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    code = mlc_opt.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(capsys: Capsys, *args: str) -> str:
    """Run; assert exit code 1 and a one-line error without traceback; return the line."""
    code, _, err = _run(capsys, *args)
    assert code == 1, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


# 1. stdin


@pytest.mark.parametrize("args", [["-"], []])
def test_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: Capsys, args: list[str]) -> None:
    _stdin(monkeypatch, RELU.encode())
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert "graph.relu %x" in out


def test_stdin_errors_are_named_stdin(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    _stdin(monkeypatch, RELU.replace("relu %x", "relu %nope").encode())
    code, _, err = _run(capsys, "-")
    assert code == 1
    assert err.splitlines()[0] == "<stdin>:2:19: error: use of undefined value %nope"


def test_op_rejected_while_parsing_is_located(
    monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    _stdin(monkeypatch, b"func.func @f(%x: f32) {\n  %y = graph.relu %x : (f32) -> f32\n}\n")
    code, _, err = _run(capsys)
    assert code == 1
    assert err.splitlines()[0] == (
        "<stdin>:2:3: error: 'graph.relu' op f32 should be of base attribute tensor"
    )


def test_missing_file(tmp_path: Path, capsys: Capsys) -> None:
    line = _one_line_error(capsys, str(tmp_path / "nope.mlir"))
    assert (
        line == f"mlc-opt: error: cannot open '{tmp_path / 'nope.mlir'}': No such file or directory"
    )


# 2. / 3. pass pipelines


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        (
            'tl-split{kernel="relu_1" loop="i2" factor=4',
            'mlc-opt: error: malformed pass pipeline \'tl-split{kernel="relu_1" loop="i2" '
            "factor=4': unclosed '{' (missing '}')",
        ),
        (
            'tl-split{kernel="relu_1" loop="i2" factor=four}',
            "mlc-opt: error: pass 'tl-split': option 'factor' expects an integer, got 'four'",
        ),
        (
            "tl-splt",
            "mlc-opt: error: unknown pass 'tl-splt' (did you mean 'tl-split'?); "
            "--list-passes lists them",
        ),
        (
            "tl-split{factr=4}",
            "mlc-opt: error: pass 'tl-split' has no option 'factr' (did you mean 'factor'?); "
            "its options: kernel, loop, factor",
        ),
        (
            "convert-tl-to-llvm{threads=3}",
            "mlc-opt: error: pass 'convert-tl-to-llvm': option 'threads' expects true or false, "
            "got '3'",
        ),
        (
            "builtin.module(cse",
            "mlc-opt: error: malformed pass pipeline 'builtin.module(cse': unclosed '(' "
            "(missing ')')",
        ),
        (
            "cse,,dce",
            "mlc-opt: error: malformed pass pipeline 'cse,,dce' at column 5: Expected pass name "
            "here",
        ),
        (
            "builtin.module(func.func(cse))",
            "mlc-opt: error: nested pass managers are not supported ('func.func(...)' in "
            "'builtin.module(func.func(cse))'): list the passes directly in "
            "'builtin.module(...)'",
        ),
        (
            "func.func(cse)",
            "mlc-opt: error: pass pipelines anchored on 'func.func' are not supported: mlc "
            "passes run on the whole module; write 'builtin.module(...)'",
        ),
    ],
)
def test_bad_pipelines_are_one_line(
    relu: Path, capsys: Capsys, pipeline: str, message: str
) -> None:
    assert _one_line_error(capsys, str(relu), "-p", pipeline) == message


@pytest.mark.parametrize(
    "args",
    [
        ["--pass-pipeline", "builtin.module(graph-canonicalize,convert-graph-to-tl)"],
        ["-p", "builtin.module(graph-canonicalize,convert-graph-to-tl)"],
        ["--pass-pipeline", "any(graph-canonicalize,convert-graph-to-tl)"],
        ["-p", "graph-canonicalize,convert-graph-to-tl"],
    ],
)
def test_mlir_and_xdsl_pipeline_syntax(relu: Path, capsys: Capsys, args: list[str]) -> None:
    code, out, err = _run(capsys, str(relu), *args)
    assert code == 0, err
    assert "tl.kernel" in out and "graph.relu" not in out


def test_pipeline_options_in_mlir_syntax(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "k.mlir"
    src.write_text(KERNEL)
    pipeline = 'builtin.module(tl-split{kernel="relu" loop="i" factor=4},cse)'
    code, out, err = _run(capsys, str(src), "--pass-pipeline", pipeline)
    assert code == 0, err
    assert "i.o" in out and "i.i" in out


def test_both_pipeline_flags_is_an_error(relu: Path, capsys: Capsys) -> None:
    line = _one_line_error(capsys, str(relu), "-p", "cse", "--pass-pipeline", "builtin.module(cse)")
    assert line == "mlc-opt: error: give the passes with either -p or --pass-pipeline, not both"


def test_unwrap_keeps_parentheses_inside_option_strings() -> None:
    assert unwrap_mlir_pipeline('builtin.module(p{s="a(b)"},q)') == 'p{s="a(b)"},q'
    assert unwrap_mlir_pipeline('p{s="builtin.module(x)"}') == 'p{s="builtin.module(x)"}'
    with pytest.raises(PipelineError, match="nested pass managers"):
        unwrap_mlir_pipeline("builtin.module(any(cse))")


def test_describe_type() -> None:
    assert describe_type(int) == "an integer"
    assert describe_type(tuple[int, ...]) == "a comma-separated list of integers"
    assert describe_type(str | None) == "a string (optional)"


def test_pass_failure_names_the_pass(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "k.mlir"
    src.write_text(KERNEL)
    line = _one_line_error(capsys, str(src), "-p", 'tl-split{kernel="nope" loop="i" factor=2}')
    assert line.startswith(f"{src}: error: in pass 'tl-split': ")
    assert '"nope"' in line


# 4. --verify-diagnostics

ANNOTATED = """\
func.func @a(%x: tensor<2xf32>) -> tensor<3xf32> {
  // expected-error@+1 {{result type(s) should be tensor<2xf32>}}
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}

// -----

func.func @b(%x: tensor<2xi32>) -> tensor<2xi32> {
  %z = graph.sigmoid %x : (tensor<2xi32>) -> tensor<2xi32>
  // expected-error@above {{expects a floating-point tensor}}
  func.return %z : tensor<2xi32>
}

// -----

func.func @c(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = graph.relu %w : (tensor<2xf32>) -> tensor<2xf32> // expected-error {{use of undefined value %w}}
  func.return %x : tensor<2xf32>
}

// -----

func.func @d(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@below {{Expected '>' after builtin parameter list}}
  %z = graph.relu %x : (tensor<2xf32) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}
"""


def test_verify_diagnostics_accepts_matching_annotations(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "ok.mlir"
    src.write_text(ANNOTATED)
    code, _, err = _run(capsys, str(src), "--split-input-file", "--verify-diagnostics")
    assert (code, err) == (0, "")


def test_verify_diagnostics_reports_a_different_message(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "bad.mlir"
    src.write_text(ANNOTATED.replace("tensor<2xf32>}}", "tensor<7xf32>}}"))
    code, _, err = _run(capsys, str(src), "--split-input-file", "--verify-diagnostics")
    assert code == 1
    assert err.splitlines() == [
        f"{src}:3:3: error: unexpected error: 'graph.relu' op result type(s) should be "
        "tensor<2xf32>",
        f'{src}:2: error: expected error on line 3 was not produced: "result type(s) should '
        'be tensor<7xf32>"',
    ]


def test_verify_diagnostics_checks_the_line(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "line.mlir"
    src.write_text(ANNOTATED.replace("expected-error@+1", "expected-error@+2"))
    code, _, err = _run(capsys, str(src), "--split-input-file", "--verify-diagnostics")
    assert code == 1
    assert f"{src}:3:3: error: unexpected error: 'graph.relu' op" in err
    assert "expected error on line 4 was not produced" in err
    assert "(it is reported on line 3)" in err


def test_verify_diagnostics_unexpected_and_missing(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "x.mlir"
    src.write_text(RELU.replace("{\n", "{ // expected-warning {{never}}\n", 1))
    code, out, err = _run(capsys, str(src), "--verify-diagnostics")
    assert code == 1 and "func.func @f" in out
    assert err.strip() == f'{src}:1: error: expected warning on line 1 was not produced: "never"'
    src.write_text(ANNOTATED.split("// -----")[1].replace("expected-error@above", "nothing"))
    code, _, err = _run(capsys, str(src), "--verify-diagnostics")
    assert code == 1
    assert err.strip().endswith(
        "error: unexpected error: 'graph.sigmoid' op graph.sigmoid expects a floating-point "
        "tensor, got tensor<2xi32>"
    )


def test_verify_diagnostics_unknown_location_for_pass_errors(
    tmp_path: Path, capsys: Capsys
) -> None:
    src = tmp_path / "k.mlir"
    src.write_text("// expected-error@unknown {{no tl.kernel or tl.block labelled}}\n" + KERNEL)
    pipeline = 'tl-split{kernel="nope" loop="i" factor=2}'
    code, _, err = _run(capsys, str(src), "--verify-diagnostics", "-p", pipeline)
    assert (code, err) == (0, "")


def test_malformed_annotation(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "m.mlir"
    src.write_text("// expected-error {{unterminated\n" + RELU)
    line = _one_line_error(capsys, str(src), "--verify-diagnostics")
    assert line.startswith(f"{src}:1: error: malformed expected-error annotation")


# 5. targets


def test_target_on_graph_ir_is_one_line(relu: Path, capsys: Capsys) -> None:
    line = _one_line_error(capsys, str(relu), "-t", "llvm")
    assert line.startswith("mlc-opt: error: target 'llvm' cannot print this module (")
    assert "its ops are from func, graph" in line
    assert line.endswith(
        "lower it first with -p convert-graph-to-tl,convert-tl-kernel-to-loops,convert-tl-to-llvm"
    )


def test_target_options_are_checked(relu: Path, capsys: Capsys) -> None:
    line = _one_line_error(capsys, str(relu), "-t", "llvm{bogus=1}")
    assert line == "mlc-opt: error: target 'llvm' has no option 'bogus'; its options: none"
    line = _one_line_error(capsys, str(relu), "-t", "llvm{")
    assert line == "mlc-opt: error: malformed target: Expected argument name here"


def test_target_after_lowering(relu: Path, capsys: Capsys) -> None:
    pipeline = "convert-graph-to-tl,convert-tl-kernel-to-loops,convert-tl-to-llvm"
    code, out, err = _run(capsys, str(relu), "-p", pipeline, "-t", "llvm")
    assert code == 0, err
    assert 'define i64 @"f"' in out  # an entry returns its status


# 6. binary input, unknown extensions


def test_binary_file(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "bin.mlir"
    src.write_bytes(b"func.func\n\x00\xd0\xff\xfe")
    line = _one_line_error(capsys, str(src))
    assert (
        line
        == f"{src}: error: not a UTF-8 text file (byte 0xd0 on line 2); MLIR input must be text"
    )


def test_unknown_extension(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "model.txt"
    src.write_text(RELU)
    line = _one_line_error(capsys, str(src))
    assert line == (
        f"mlc-opt: error: {src}: unrecognized file extension '.txt' (known: mlir, onnx); "
        "-f mlir reads it as MLIR"
    )
    assert _run(capsys, str(src), "-f", "mlir")[0] == 0


# 7. undefined values


def test_undefined_value_is_reported_at_its_use(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "u.mlir"
    src.write_text(RELU + "// -----\n" + RELU.replace("relu %x", "relu %y"))
    code, _, err = _run(capsys, str(src), "--split-input-file")
    assert code == 1
    assert err.splitlines()[0] == f"{src}:7:19: error: use of undefined value %y"
    assert "Traceback" not in err


def test_forward_references_still_work(tmp_path: Path, capsys: Capsys) -> None:
    src = tmp_path / "fwd.mlir"
    src.write_text(
        '"test.graph"() ({\n  "test.use"(%v) : (i32) -> ()\n  %v = "test.def"() : () -> i32\n'
        "}) : () -> ()\n"
    )
    code, out, err = _run(capsys, str(src), "--allow-unregistered-dialect")
    assert code == 0, err
    assert '"test.use"(%v)' in out


# 8. --list-passes / --help-pass / --help


def test_list_passes(capsys: Capsys) -> None:
    code, out, _ = _run(capsys, "--list-passes")
    assert code == 0
    mlc_part, xdsl_part = out.split("xDSL passes:")
    assert mlc_part.startswith("mlc passes:\n")
    assert "  convert-graph-to-tl         Lower every graph op to `tl.kernel`s" in mlc_part
    assert "\n  cse " in xdsl_part and "tl-split" not in xdsl_part


def test_help_pass(capsys: Capsys) -> None:
    code, out, _ = _run(capsys, "--help-pass", "fold-constants")
    assert code == 0
    assert out.startswith("fold-constants (mlc.transforms.graph.")
    assert "replace graph ops with constant operands" in out
    assert "Options:\n  max-elements: an integer (default: 4194304)\n" in out
    line = _one_line_error(capsys, "--help-pass", "fold-constant")
    assert line == "mlc-opt: error: unknown pass 'fold-constant' (did you mean 'fold-constants'?)"


def test_help_is_short(capsys: Capsys) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    assert "--list-passes lists the passes" in out
    assert "convert-tl-kernel-to-loops" not in out


def test_usage_errors_are_one_line(capsys: Capsys) -> None:
    line = _one_line_error(capsys, "--no-such-flag")
    assert (
        line == "mlc-opt: error: unrecognized arguments: --no-such-flag (--help lists the options)"
    )
    line = _one_line_error(capsys, "-t", "nope")
    assert line.startswith("mlc-opt: error: argument -t/--target: invalid choice: 'nope'")


# 9. internal errors


def test_internal_error_exit_code_2(
    relu: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.delenv("MLC_DEBUG", raising=False)
    monkeypatch.setattr(mlc_opt.MlcOptMain, "parse_chunk", boom)
    code, _, err = _run(capsys, str(relu))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (
        "mlc-opt: internal error: RuntimeError: boom; please report this bug "
        "(MLC_DEBUG=1 shows the traceback)"
    )


def test_mlc_debug_shows_the_traceback(
    relu: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setenv("MLC_DEBUG", "1")
    monkeypatch.setattr(mlc_opt.MlcOptMain, "parse_chunk", boom)
    with pytest.raises(RuntimeError, match="boom"):
        mlc_opt.main([str(relu)])


def test_load_passes_of_a_missing_module(relu: Path, capsys: Capsys) -> None:
    line = _one_line_error(capsys, str(relu), "--load-passes", "no_such_module_xyz")
    assert line.startswith("mlc-opt: error: --load-passes: cannot import 'no_such_module_xyz'")


# 10. --version


def test_version(capsys: Capsys) -> None:
    from importlib.metadata import version

    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"mlc-opt {version('mlc')} (xDSL {version('xdsl')})"
