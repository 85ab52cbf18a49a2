// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @blocked
// CHECK-NEXT: %{{.*}} = graph.to_blocked %{{.*}} {block = 8 : i64} : (tensor<1x16x5x5xf32>) -> tensor<1x2x5x5x8xf32>
// CHECK-NEXT: %{{.*}} = graph.conv_blocked %{{.*}}, %{{.*}}, %{{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x5x5x8xf32>, tensor<1x2x3x3x8x16xf32>, tensor<16xf32>) -> tensor<1x1x5x5x16xf32>
// CHECK-NEXT: %{{.*}} = graph.from_blocked %{{.*}} : (tensor<1x1x5x5x16xf32>) -> tensor<1x16x5x5xf32>
func.func @blocked(%x: tensor<1x16x5x5xf32>, %w: tensor<1x2x3x3x8x16xf32>, %b: tensor<16xf32>) -> tensor<1x16x5x5xf32> {
  %xb = graph.to_blocked %x {block = 8 : i64} : (tensor<1x16x5x5xf32>) -> tensor<1x2x5x5x8xf32>
  %yb = graph.conv_blocked %xb, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x5x5x8xf32>, tensor<1x2x3x3x8x16xf32>, tensor<16xf32>) -> tensor<1x1x5x5x16xf32>
  %y = graph.from_blocked %yb : (tensor<1x1x5x5x16xf32>) -> tensor<1x16x5x5xf32>
  func.return %y : tensor<1x16x5x5xf32>
}

// CHECK-LABEL: func.func @depthwise
// CHECK-NEXT: %{{.*}} = graph.depthwise_conv_blocked %{{.*}}, %{{.*}}, %{{.*}} {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x8x8x8xf32>, tensor<2x3x3x8xf32>, tensor<16xf32>) -> tensor<1x2x4x4x8xf32>
func.func @depthwise(%x: tensor<1x2x8x8x8xf32>, %w: tensor<2x3x3x8xf32>, %b: tensor<16xf32>) -> tensor<1x2x4x4x8xf32> {
  %y = graph.depthwise_conv_blocked %x, %w, %b {strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x8x8x8xf32>, tensor<2x3x3x8xf32>, tensor<16xf32>) -> tensor<1x2x4x4x8xf32>
  func.return %y : tensor<1x2x4x4x8xf32>
}

// CHECK-LABEL: func.func @grouped
// CHECK-NEXT: %{{.*}} = graph.group_conv_blocked %{{.*}}, %{{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x3x6x6x8xf32>, tensor<2x4x3x3x3x8x8xf32>) -> tensor<1x2x4x6x6x8xf32>
func.func @grouped(%x: tensor<1x2x3x6x6x8xf32>, %w: tensor<2x4x3x3x3x8x8xf32>) -> tensor<1x2x4x6x6x8xf32> {
  %y = graph.group_conv_blocked %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>} : (tensor<1x2x3x6x6x8xf32>, tensor<2x4x3x3x3x8x8xf32>) -> tensor<1x2x4x6x6x8xf32>
  func.return %y : tensor<1x2x4x6x6x8xf32>
}
