// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @matmul
// CHECK-NEXT: %{{.*}} = graph.matmul %{{.*}}, %{{.*}} : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
func.func @matmul(%x: tensor<5x2x3xf32>, %y: tensor<3x4xf32>) {
  %z = graph.matmul %x, %y : (tensor<5x2x3xf32>, tensor<3x4xf32>) -> tensor<5x2x4xf32>
  func.return
}

// CHECK-LABEL: func.func @gemm
// CHECK-NEXT: %{{.*}} = graph.gemm %{{.*}}, %{{.*}}, %{{.*}} {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
func.func @gemm(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>, %c: tensor<4xf32>) {
  %y = graph.gemm %a, %b, %c {alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, trans_a = false, trans_b = true} : (tensor<2x3xf32>, tensor<4x3xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  func.return
}

// CHECK-LABEL: func.func @conv
// CHECK-NEXT: %{{.*}} = graph.conv %{{.*}}, %{{.*}}, %{{.*}} {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
func.func @conv(%x: tensor<1x3x8x8xf32>, %w: tensor<4x3x3x3xf32>, %b: tensor<4xf32>) {
  %y = graph.conv %x, %w, %b {strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x8x8xf32>, tensor<4x3x3x3xf32>, tensor<4xf32>) -> tensor<1x4x8x8xf32>
  func.return
}

// CHECK-LABEL: func.func @conv_transpose
// CHECK-NEXT: %{{.*}} = graph.conv_transpose %{{.*}}, %{{.*}} {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32>
func.func @conv_transpose(%x: tensor<1x3x4x4xf32>, %w: tensor<3x2x3x3xf32>) {
  %y = graph.conv_transpose %x, %w {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, output_padding = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x3x4x4xf32>, tensor<3x2x3x3xf32>) -> tensor<1x2x10x10xf32>
  func.return
}

// CHECK-LABEL: func.func @max_pool
// CHECK-NEXT: %{{.*}} = graph.max_pool %{{.*}} {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
func.func @max_pool(%x: tensor<1x3x8x8xf32>) {
  %y = graph.max_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xf32>
  func.return
}

// CHECK-LABEL: func.func @max_pool_indices
// CHECK-NEXT: %{{.*}} = graph.max_pool_indices %{{.*}} {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, storage_order = 0 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xi64>
func.func @max_pool_indices(%x: tensor<1x3x8x8xf32>) {
  %i = graph.max_pool_indices %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, storage_order = 0 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x4x4xi64>
  func.return
}

// CHECK-LABEL: func.func @average_pool
// CHECK-NEXT: %{{.*}} = graph.average_pool %{{.*}} {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
func.func @average_pool(%x: tensor<1x3x8x8xf32>) {
  %y = graph.average_pool %x {kernel_shape = array<i64: 3, 3>, strides = array<i64: 1, 1>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = false, count_include_pad = false} : (tensor<1x3x8x8xf32>) -> tensor<1x3x8x8xf32>
  func.return
}

// CHECK-LABEL: func.func @lp_pool
// CHECK-NEXT: %{{.*}} = graph.lp_pool %{{.*}} {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, p = 2 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
func.func @lp_pool(%x: tensor<1x3x8x8xf32>) {
  %y = graph.lp_pool %x {kernel_shape = array<i64: 2, 2>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false, p = 2 : i64} : (tensor<1x3x8x8xf32>) -> tensor<1x3x7x7xf32>
  func.return
}

// CHECK-LABEL: func.func @global_average_pool
// CHECK-NEXT: %{{.*}} = graph.global_average_pool %{{.*}} : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
func.func @global_average_pool(%x: tensor<1x3x8x8xf32>) {
  %y = graph.global_average_pool %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
  func.return
}

// CHECK-LABEL: func.func @global_max_pool
// CHECK-NEXT: %{{.*}} = graph.global_max_pool %{{.*}} : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
func.func @global_max_pool(%x: tensor<1x3x8x8xf32>) {
  %y = graph.global_max_pool %x : (tensor<1x3x8x8xf32>) -> tensor<1x3x1x1xf32>
  func.return
}

// CHECK-LABEL: func.func @batch_norm
// CHECK-NEXT: %{{.*}} = graph.batch_norm %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
func.func @batch_norm(%x: tensor<2x3x4x4xf32>, %scale: tensor<3xf32>, %bias: tensor<3xf32>, %mean: tensor<3xf32>, %var: tensor<3xf32>) {
  %y = graph.batch_norm %x, %scale, %bias, %mean, %var {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
  func.return
}

// CHECK-LABEL: func.func @instance_norm
// CHECK-NEXT: %{{.*}} = graph.instance_norm %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
func.func @instance_norm(%x: tensor<2x3x4x4xf32>, %scale: tensor<3xf32>, %bias: tensor<3xf32>) {
  %y = graph.instance_norm %x, %scale, %bias {epsilon = 1.000000e-05 : f32} : (tensor<2x3x4x4xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3x4x4xf32>
  func.return
}

// CHECK-LABEL: func.func @layer_norm
// CHECK-NEXT: %{{.*}} = graph.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
func.func @layer_norm(%x: tensor<2x3x4xf32>, %scale: tensor<4xf32>, %bias: tensor<4xf32>) {
  %y = graph.layer_norm %x, %scale, %bias {axis = 2 : i64, epsilon = 1.000000e-05 : f32} : (tensor<2x3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  func.return
}

// CHECK-LABEL: func.func @lrn
// CHECK-NEXT: %{{.*}} = graph.lrn %{{.*}} {size = 3 : i64, alpha = 1.000000e-04 : f32, beta = 7.500000e-01 : f32, bias = 1.000000e+00 : f32} : (tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
func.func @lrn(%x: tensor<1x5x4x4xf32>) {
  %y = graph.lrn %x {size = 3 : i64, alpha = 1.000000e-04 : f32, beta = 7.500000e-01 : f32, bias = 1.000000e+00 : f32} : (tensor<1x5x4x4xf32>) -> tensor<1x5x4x4xf32>
  func.return
}

// CHECK-LABEL: func.func @softmax
// CHECK-NEXT: %{{.*}} = graph.softmax %{{.*}} {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @softmax(%x: tensor<2x3xf32>) {
  %y = graph.softmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}

// CHECK-LABEL: func.func @log_softmax
// CHECK-NEXT: %{{.*}} = graph.log_softmax %{{.*}} {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @log_softmax(%x: tensor<2x3xf32>) {
  %y = graph.log_softmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}

// CHECK-LABEL: func.func @hardmax
// CHECK-NEXT: %{{.*}} = graph.hardmax %{{.*}} {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
func.func @hardmax(%x: tensor<2x3xf32>) {
  %y = graph.hardmax %x {axes = array<i64: 1>} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  func.return
}
