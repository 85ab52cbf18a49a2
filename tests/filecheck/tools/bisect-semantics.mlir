// RUN: not mlc-opt %s --load-passes mlc.testing.faults -p 'canonicalize,mlc-test-add-to-sub,convert-graph-to-tl' --bisect-semantics | filecheck %s
// RUN: mlc-opt %s -p 'canonicalize,convert-graph-to-tl' --bisect-semantics | filecheck %s --check-prefix=GOOD

// CHECK:      first pass that changes semantics: 'mlc-test-add-to-sub' (pass 2 of the pipeline)
// CHECK:      --- IR before ---
// CHECK:      func.func @main
// CHECK-NEXT:   %{{.*}} = graph.add %x, %y
// CHECK-NEXT:   func.return
// CHECK:      --- IR after ---
// CHECK:        graph.sub
// CHECK:      --- differences ---
// CHECK-NEXT: output #0: {{[0-9]+}} of 6 elements of float32[2, 3] differ

// GOOD: every pass preserves semantics on the inputs tried

func.func @main(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %r = graph.relu %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %a = graph.add %r, %y : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  %t = graph.tanh %a : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %m = graph.mul %t, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return %m : tensor<2x3xf32>
}
