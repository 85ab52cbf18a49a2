// RUN: mlc-opt %s -p graph-canonicalize | filecheck %s

// x + 0.0 is not x for x = -0.0: kept
// CHECK-LABEL: func.func @neutral
// CHECK:         %[[ADD:.*]] = graph.add %x, %{{.*}} : (tensor<4xf32>, tensor<1xf32>)
// CHECK-NEXT:    func.return %x, %x, %x, %[[ADD]] : tensor<4xf32>
func.func @neutral(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  %one = graph.constant dense<1.0> : tensor<4xf32>
  %nzero = graph.constant dense<-0.0> : tensor<4xf32>
  %zero = graph.constant dense<0.0> : tensor<1xf32>
  %a = graph.mul %one, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %b = graph.add %x, %nzero : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %c = graph.sub %x, %zero : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  %d = graph.add %x, %zero : (tensor<4xf32>, tensor<1xf32>) -> tensor<4xf32>
  func.return %a, %b, %c, %d : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// CHECK-LABEL: func.func @no_ops
// CHECK-NEXT:    func.return %x : tensor<2x3xf32>
func.func @no_ops(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %a = graph.identity %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %b = graph.dropout %a {ratio = 5.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %c = graph.cast %b : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %d = graph.reshape %c : (tensor<2x3xf32>) -> tensor<6xf32>
  %e = graph.reshape %d : (tensor<6xf32>) -> tensor<2x3xf32>
  %f = graph.transpose %e {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %g = graph.transpose %f {perm = array<i64: 1, 0>} : (tensor<3x2xf32>) -> tensor<2x3xf32>
  func.return %g : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @chains
// CHECK-NEXT:    %[[T:.*]] = graph.transpose %x {perm = array<i64: 2, 0, 1>}
// CHECK-NEXT:    %[[R:.*]] = graph.reshape %[[T]] : (tensor<4x2x3xf32>) -> tensor<8x3xf32>
// CHECK-NEXT:    func.return %[[R]]
func.func @chains(%x: tensor<2x3x4xf32>) -> tensor<8x3xf32> {
  %a = graph.transpose %x {perm = array<i64: 1, 2, 0>} : (tensor<2x3x4xf32>) -> tensor<3x4x2xf32>
  %b = graph.transpose %a {perm = array<i64: 1, 2, 0>} : (tensor<3x4x2xf32>) -> tensor<4x2x3xf32>
  %c = graph.reshape %b : (tensor<4x2x3xf32>) -> tensor<24xf32>
  %d = graph.reshape %c : (tensor<24xf32>) -> tensor<8x3xf32>
  func.return %d : tensor<8x3xf32>
}

// CHECK-LABEL: func.func @gemm
// CHECK-NEXT:    %[[B:.*]] = graph.constant dense<{{\[\[}}1.000000e+00, 4.000000e+00], [2.000000e+00, 5.000000e+00], [3.000000e+00, 6.000000e+00]]> : tensor<3x2xf32>
// CHECK-NEXT:    %{{.*}} = graph.gemm %a, %[[B]] {{.*}}trans_b = false{{.*}} : (tensor<1x3xf32>, tensor<3x2xf32>) -> tensor<1x2xf32>
func.func @gemm(%a: tensor<1x3xf32>) -> tensor<1x2xf32> {
  %b = graph.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]> : tensor<2x3xf32>
  %y = graph.gemm %a, %b {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true} : (tensor<1x3xf32>, tensor<2x3xf32>) -> tensor<1x2xf32>
  func.return %y : tensor<1x2xf32>
}
