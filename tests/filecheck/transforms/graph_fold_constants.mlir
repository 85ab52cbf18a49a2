// RUN: mlc-opt %s -p fold-constants | filecheck %s
// RUN: mlc-opt %s -p 'fold-constants{max-elements=100}' | filecheck %s --check-prefix=LIMIT

// CHECK-LABEL: func.func @chain
// CHECK-NEXT:    %{{.*}} = graph.constant dense<[3.000000e+00, 6.000000e+00]> : tensor<2xf32>
// CHECK-NEXT:    func.return
func.func @chain() -> tensor<2xf32> {
  %a = graph.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %b = graph.constant dense<3.0> : tensor<2xf32>
  %c = graph.mul %a, %b : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  func.return %c : tensor<2xf32>
}

// A transposed constant weight folds; the matmul on the argument stays.
// CHECK-LABEL: func.func @weight
// CHECK-NEXT:    %[[W:.*]] = graph.constant dense<{{\[\[}}1, 3], [2, 4]]> : tensor<2x2xi32>
// CHECK-NEXT:    %{{.*}} = graph.matmul %x, %[[W]]
// CHECK-NOT:     graph.transpose
func.func @weight(%x: tensor<3x2xi32>) -> tensor<3x2xi32> {
  %w = graph.constant dense<[[1, 2], [3, 4]]> : tensor<2x2xi32>
  %t = graph.transpose %w {perm = array<i64: 1, 0>} : (tensor<2x2xi32>) -> tensor<2x2xi32>
  %y = graph.matmul %x, %t : (tensor<3x2xi32>, tensor<2x2xi32>) -> tensor<3x2xi32>
  func.return %y : tensor<3x2xi32>
}

// Growing a constant past the limit is left to run time.
// CHECK-LABEL: func.func @big
// CHECK-NOT:     graph.expand
// LIMIT-LABEL: func.func @big
// LIMIT:         graph.expand
func.func @big() -> tensor<64x4xf32> {
  %c = graph.constant dense<1.0> : tensor<1x4xf32>
  %e = graph.expand %c {shape = array<i64: 64, 4>} : (tensor<1x4xf32>) -> tensor<64x4xf32>
  func.return %e : tensor<64x4xf32>
}
