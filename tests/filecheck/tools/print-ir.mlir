// RUN: mlc-opt %s -p 'graph-canonicalize,fold-constants,convert-graph-to-tl' --print-ir-after-all 2>&1 >/dev/null | filecheck %s --check-prefix=ALL
// RUN: mlc-opt %s -p 'graph-canonicalize,fold-constants,convert-graph-to-tl' --print-ir-after-change 2>&1 >/dev/null | filecheck %s --check-prefix=CHANGE

// fold-constants finds nothing to fold here (graph-canonicalize already removed x*1):
// --print-ir-after-all prints it, --print-ir-after-change does not.

// ALL:      IR Dump After graph-canonicalize
// ALL:      IR Dump After fold-constants
// ALL:      IR Dump After convert-graph-to-tl

// CHANGE:     IR Dump After graph-canonicalize
// CHANGE-NOT: graph.mul
// CHANGE-NOT: IR Dump After fold-constants
// CHANGE:     IR Dump After convert-graph-to-tl
func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %one = graph.constant dense<1.0> : tensor<4xf32>
  %y = graph.mul %x, %one : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %r = graph.relu %y : (tensor<4xf32>) -> tensor<4xf32>
  func.return %r : tensor<4xf32>
}
