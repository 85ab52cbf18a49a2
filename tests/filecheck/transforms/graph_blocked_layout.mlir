// RUN: mlc-opt %s -p 'graph-blocked-layout{block=8}' | filecheck %s

// conv -> relu -> conv: one to_blocked at the input, one from_blocked at the output;
// the weights (arguments here) are blocked OIHW -> O/8 x I/8 x KH x KW x 8i x 8o.
// CHECK-LABEL: func.func @conv_relu_conv
// CHECK-NEXT:    %[[XB:.*]] = graph.to_blocked %x {block = 8 : i64} : (tensor<1x16x6x6xf32>) -> tensor<1x2x6x6x8xf32>
// CHECK-NEXT:    %[[W1S:.*]] = graph.reshape %w1 : (tensor<16x16x3x3xf32>) -> tensor<2x8x2x8x3x3xf32>
// CHECK-NEXT:    %[[W1B:.*]] = graph.transpose %[[W1S]] {perm = array<i64: 0, 2, 4, 5, 3, 1>} : (tensor<2x8x2x8x3x3xf32>) -> tensor<2x2x3x3x8x8xf32>
// CHECK-NEXT:    %[[A:.*]] = graph.conv_blocked %[[XB]], %[[W1B]], %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x6x6x8xf32>, tensor<2x2x3x3x8x8xf32>, tensor<16xf32>) -> tensor<1x2x6x6x8xf32>
// CHECK-NEXT:    %[[R:.*]] = graph.relu %[[A]] : (tensor<1x2x6x6x8xf32>) -> tensor<1x2x6x6x8xf32>
// CHECK-NOT:     graph.from_blocked
// CHECK-NOT:     graph.to_blocked
// CHECK:         %[[C:.*]] = graph.conv_blocked %[[R]], %{{.*}} {{.*}} : (tensor<1x2x6x6x8xf32>, tensor<2x2x3x3x8x8xf32>) -> tensor<1x2x6x6x8xf32>
// CHECK-NEXT:    %[[Y:.*]] = graph.from_blocked %[[C]] : (tensor<1x2x6x6x8xf32>) -> tensor<1x16x6x6xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @conv_relu_conv(%x: tensor<1x16x6x6xf32>, %w1: tensor<16x16x3x3xf32>, %b: tensor<16xf32>, %w2: tensor<16x16x3x3xf32>) -> tensor<1x16x6x6xf32> {
  %a = graph.conv %x, %w1, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x16x6x6xf32>, tensor<16x16x3x3xf32>, tensor<16xf32>) -> tensor<1x16x6x6xf32>
  %r = graph.relu %a : (tensor<1x16x6x6xf32>) -> tensor<1x16x6x6xf32>
  %c = graph.conv %r, %w2 {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x16x6x6xf32>, tensor<16x16x3x3xf32>) -> tensor<1x16x6x6xf32>
  func.return %c : tensor<1x16x6x6xf32>
}

// A per-channel constant is reshaped to 1 x C/8 x 1 x 1 x 8 (then folded); max pooling
// gets a unit window along the block axis.
// CHECK-LABEL: func.func @add_pool
// CHECK:         graph.to_blocked
// CHECK:         graph.conv_blocked
// CHECK:         %[[S:.*]] = graph.add %{{.*}}, %{{.*}} : (tensor<1x2x6x6x8xf32>, tensor<1x2x1x1x8xf32>) -> tensor<1x2x6x6x8xf32>
// CHECK-NEXT:    %[[P:.*]] = graph.max_pool %[[S]] {kernel_shape = array<i64: 2, 2, 1>, strides = array<i64: 2, 2, 1>, pads = array<i64: 0, 0, 0, 0, 0, 0>, dilations = array<i64: 1, 1, 1>, ceil_mode = false} : (tensor<1x2x6x6x8xf32>) -> tensor<1x2x3x3x8xf32>
// CHECK-NEXT:    %[[Y:.*]] = graph.from_blocked %[[P]] : (tensor<1x2x3x3x8xf32>) -> tensor<1x16x3x3xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @add_pool(%x: tensor<1x16x6x6xf32>, %w: tensor<16x16x1x1xf32>) -> tensor<1x16x3x3xf32> {
  %c = graph.constant dense<1.0> : tensor<16x1x1xf32>
  %a = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x16x6x6xf32>, tensor<16x16x1x1xf32>) -> tensor<1x16x6x6xf32>
  %s = graph.add %a, %c : (tensor<1x16x6x6xf32>, tensor<16x1x1xf32>) -> tensor<1x16x6x6xf32>
  %p = graph.max_pool %s {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x16x6x6xf32>) -> tensor<1x16x3x3xf32>
  func.return %p : tensor<1x16x3x3xf32>
}
