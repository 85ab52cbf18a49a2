"""`mlc.context()` knows every xDSL dialect and every mlc dialect."""

import mlc
from mlc.registry import all_dialect_factories


def test_context_registers_xdsl_and_mlc_dialects() -> None:
    names = set(mlc.context().registered_dialect_names)
    assert {"builtin", "func", "arith", "memref", "scf", "llvm", "vector"} <= names
    assert set(all_dialect_factories()) <= names


def test_context_parses_mixed_dialect_ir() -> None:
    from mlc.parser.mlir import parse_module

    module = parse_module(
        mlc.context(),
        "func.func @f(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
        "  %y = graph.relu %x : (tensor<2xf32>) -> tensor<2xf32>\n"
        "  func.return %y : tensor<2xf32>\n}\n",
    )
    assert [op.name for op in module.walk()][-2:] == ["graph.relu", "func.return"]
