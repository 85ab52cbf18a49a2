// RUN: not mlc-opt %s --split-input-file --verify-diagnostics 2>&1 >/dev/null | filecheck %s

// Each mismatch between the diagnostics and the annotations is one line naming the line
// and the message; the exit code is 1.

// A different message: the diagnostic is unexpected and the annotation is not produced.
func.func @wrong_text(%x: tensor<2xf32>) -> tensor<3xf32> {
  // expected-error@+1 {{result type(s) should be tensor<5xf32>}}
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<3xf32>
  func.return %y : tensor<3xf32>
}

// -----

// The right message on the wrong line.
func.func @wrong_line(%x: tensor<2x3xf32>, %y: tensor<4xf32>) -> tensor<2x3xf32> {
  // expected-error@+2 {{do not broadcast}}
  %z = graph.add %x, %y : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  func.return %z : tensor<2x3xf32>
}

// -----

// An annotation on valid IR.
func.func @valid(%x: tensor<2xf32>) -> tensor<2xf32> {
  // expected-error@+2 {{this never happens}}
  // expected-warning {{nor this}}
  %y = graph.relu %x : (tensor<2xf32>) -> tensor<2xf32>
  func.return %y : tensor<2xf32>
}

// -----

// An error without an annotation.
func.func @no_annotation(%x: tensor<2xi32>) -> tensor<2xi32> {
  %z = graph.sigmoid %x : (tensor<2xi32>) -> tensor<2xi32>
  func.return %z : tensor<2xi32>
}

// Each mismatch is reported (line numbers are this file's):
// CHECK: verify-diagnostics-mismatch.mlir:9:3: error: unexpected error: 'graph.relu' op result type(s) should be tensor<2xf32>
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:8: error: expected error on line 9 was not produced: "result type(s) should be tensor<5xf32>"
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:18:3: error: unexpected error: 'graph.add' op shapes [(2, 3), (4,)] do not broadcast
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:17: error: expected error on line 19 was not produced: "do not broadcast" (it is reported on line 18)
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:26: error: expected error on line 28 was not produced: "this never happens"
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:27: error: expected warning on line 27 was not produced: "nor this"
// CHECK-NEXT: verify-diagnostics-mismatch.mlir:36:3: error: unexpected error: 'graph.sigmoid' op graph.sigmoid expects a floating-point tensor, got tensor<2xi32>
