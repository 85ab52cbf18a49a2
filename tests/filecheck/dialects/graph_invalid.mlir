// RUN: mlc-opt %s --split-input-file --verify-diagnostics | filecheck %s

func.func @wrong_result_shape(%x: tensor<2xf32>) -> tensor<3xf32> {
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}
// CHECK: graph_invalid.mlir:4:3: error: 'graph.relu' op result type(s) should be tensor<2xf32>

// -----

func.func @no_broadcast(%x: tensor<2x3xf32>, %y: tensor<4xf32>) -> tensor<2x3xf32> {
  %z = graph.add %x, %y : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return %z : tensor<2x3xf32>
}
// CHECK: graph_invalid.mlir:12:3: error: 'graph.add' op shapes [(2, 3), (4,)] do not broadcast

// -----

func.func @mixed_types(%x: tensor<2xf32>, %y: tensor<2xi32>) -> tensor<2xf32> {
  %z = graph.mul %x, %y : (tensor<2xf32>, tensor<2xi32>) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}
// CHECK: error: 'graph.mul' op graph.mul operands must have the same element type, got f32 and i32

// -----

func.func @sigmoid_of_int(%x: tensor<2xi32>) -> tensor<2xi32> {
  %z = graph.sigmoid %x : (tensor<2xi32>) -> tensor<2xi32>
  func.return %z : tensor<2xi32>
}
// CHECK: error: 'graph.sigmoid' op graph.sigmoid expects a floating-point tensor, got tensor<2xi32>

// -----

func.func @where_needs_bool(%c: tensor<2xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
  %z = graph.where %c, %x, %x : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}
// CHECK: error: 'graph.where' op graph.where condition must be a boolean (i1) tensor

// -----

func.func @bad_syntax(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = graph.relu %x : (tensor<2xf32) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}
// CHECK: graph_invalid.mlir:44:37: error: Expected '>' after builtin parameter list
