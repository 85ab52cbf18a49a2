// RUN: mlc-opt %s --split-input-file --verify-diagnostics

func.func @wrong_result_shape(%x: tensor<2xf32>) -> tensor<3xf32> {
  // expected-error@+1 {{'graph.relu' op result type(s) should be tensor<2xf32>}}
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}

// -----

func.func @no_broadcast(%x: tensor<2x3xf32>, %y: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error@+1 {{'graph.add' op shapes [(2, 3), (4,)] do not broadcast}}
  %z = graph.add %x, %y : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return %z : tensor<2x3xf32>
}

// -----

func.func @mixed_types(%x: tensor<2xf32>, %y: tensor<2xi32>) -> tensor<2xf32> {
  // expected-error@+1 {{'graph.mul' op graph.mul operands must have the same element type, got f32 and i32}}
  %z = graph.mul %x, %y : (tensor<2xf32>, tensor<2xi32>) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}

// -----

func.func @sigmoid_of_int(%x: tensor<2xi32>) -> tensor<2xi32> {
  // expected-error@+1 {{'graph.sigmoid' op graph.sigmoid expects a floating-point tensor, got tensor<2xi32>}}
  %z = graph.sigmoid %x : (tensor<2xi32>) -> tensor<2xi32>
  func.return %z : tensor<2xi32>
}

// -----

func.func @where_needs_bool(%c: tensor<2xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{'graph.where' op graph.where condition must be a boolean (i1) tensor}}
  %z = graph.where %c, %x, %x : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}

// -----

func.func @bad_syntax(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{Expected '>' after builtin parameter list}}
  %z = graph.relu %x : (tensor<2xf32) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}
