// RUN: mlc-opt %s --split-input-file --verify-diagnostics | filecheck %s

// Every diagnostic matches an annotation on its line (the annotation's text is a substring
// of the message) and every annotation is produced: exit code 0. Chunks without errors are
// printed as usual.

// CHECK: func.func @valid
func.func @valid(%x: tensor<2xf32>) -> tensor<2xf32> {
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}

// -----

func.func @same_line(%x: tensor<2xf32>) -> tensor<3xf32> {
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<3xf32> // expected-error {{result type(s) should be tensor<2xf32>}}
  func.return %y : tensor<3xf32>
}

// -----

func.func @line_below(%x: tensor<2x3xf32>, %y: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error@+2 {{'graph.add' op shapes [(2, 3), (4,)] do not broadcast}}

  %z = graph.add %x, %y : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return %z : tensor<2x3xf32>
}

// -----

func.func @line_above(%x: tensor<2xi32>) -> tensor<2xi32> {
  %z = graph.sigmoid %x : (tensor<2xi32>) -> tensor<2xi32>
  // expected-error@-1 {{expects a floating-point tensor}}
  func.return %z : tensor<2xi32>
}

// -----

func.func @above_and_below(%c: tensor<2xf32>, %x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@below {{condition must be a boolean (i1) tensor}}
  %z = graph.where %c, %x, %x : (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %z : tensor<2xf32>
}

// -----

func.func @parse_error(%x: tensor<2xf32>) -> tensor<2xf32> {
  %z = graph.relu %x : (tensor<2xf32) -> tensor<2xf32>
  // expected-error@above {{Expected '>' after builtin parameter list}}
  func.return %z : tensor<2xf32>
}

// -----

// An undefined value is reported where it is used, not at the end of the input.
func.func @undefined_value(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+1 {{use of undefined value %w}}
  %z = graph.relu %w : (tensor<2xf32>) -> tensor<2xf32>
  func.return %x : tensor<2xf32>
}
