// RUN: mlc-opt %s -p graph-optimize | filecheck %s

// The weight's transpose folds, the batch norm folds into the conv, the identity goes and
// the two equal relus are merged.
// CHECK-LABEL: func.func @main
// CHECK-NEXT:    %[[W:.*]] = graph.constant {{.*}} : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = graph.constant {{.*}} : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = graph.conv %x, %[[W]], %[[B]]
// CHECK-NEXT:    %[[R:.*]] = graph.relu %[[Y]]
// CHECK-NEXT:    %[[S:.*]] = graph.add %[[R]], %[[R]]
// CHECK-NEXT:    func.return %[[S]]
func.func @main(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w0 = graph.constant dense<[[[[1.0, 2.0]]]]> : tensor<1x1x1x2xf32>
  %w = graph.transpose %w0 {perm = array<i64: 3, 0, 1, 2>} : (tensor<1x1x1x2xf32>) -> tensor<2x1x1x1xf32>
  %p = graph.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = graph.batch_norm %y, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  %i = graph.identity %z : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %r1 = graph.relu %i : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %r2 = graph.relu %z : (tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %s = graph.add %r1, %r2 : (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  func.return %s : tensor<1x2x2x2xf32>
}
