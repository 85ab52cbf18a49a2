// RUN: mlc-opt %s --verify-diagnostics -p 'tl-split{kernel="nope" loop="i" factor=2}'
// RUN: not mlc-opt %s --verify-diagnostics -p 'tl-split{kernel="relu" loop="j" factor=2}' 2>&1 | filecheck %s

// A pass failure has no location: `@unknown` expects it.

// expected-error@unknown {{in pass 'tl-split': no tl.kernel or tl.block labelled "nope"}}
func.func @relu(%x: memref<8xf32>, %y: memref<8xf32>) {
  tl.kernel "relu" iterators(i: 8 parallel) ins(%x[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// CHECK: verify-diagnostics-pass.mlir: error: unexpected error: in pass 'tl-split':
// CHECK: verify-diagnostics-pass.mlir:6: error: expected error without a location was not produced: "in pass 'tl-split': no tl.kernel or tl.block labelled "nope""
