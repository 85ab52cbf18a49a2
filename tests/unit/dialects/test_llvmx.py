"""The `llvmx` ops: textual round trips and verification."""

from __future__ import annotations

import pytest
from xdsl.dialects import test as xdsl_test
from xdsl.dialects.builtin import VectorType, f32, i32
from xdsl.utils.exceptions import VerifyException

import mlc
from mlc.dialects.llvmx import FPToSIOp
from mlc.parser.mlir import parse_module

ROUND_TRIP = """builtin.module {
  func.func @f(%x : vector<8xf32>, %a : vector<8xf32>, %i : i64) -> (vector<8xi32>, vector<8xi1>, f32) {
    %n = llvmx.fptosi %x : vector<8xf32> -> vector<8xi32>
    %m = llvmx.fcmp "olt" %x, %a : vector<8xf32> -> vector<8xi1>
    %e = llvmx.extractelement %x[%i] : vector<8xf32> -> f32
    func.return %n, %m, %e : vector<8xi32>, vector<8xi1>, f32
  }
}"""


def test_ops_print_as_they_parse() -> None:
    module = parse_module(mlc.context(), ROUND_TRIP)
    module.verify()
    text = str(module)
    assert str(parse_module(mlc.context(), text)) == text
    assert "llvmx.fptosi" in text and ": vector<8xf32> -> vector<8xi32>" in text


def test_fptosi_verifies_its_result_type() -> None:
    x = xdsl_test.TestOp(result_types=[VectorType(f32, [8])]).results[0]
    with pytest.raises(VerifyException, match="one integer per operand lane"):
        FPToSIOp(x, VectorType(i32, [4])).verify()
    with pytest.raises(VerifyException, match="must be an integer"):
        FPToSIOp(x, VectorType(f32, [8])).verify()
    FPToSIOp(x, VectorType(i32, [8])).verify()
