// RUN: mlc-opt %s -p fold-batchnorm | filecheck %s

// s = gamma / sqrt(var + eps) = [2, 0.5]; W' = W * s; b' = (0 - mean) * s + beta = [1, -1.5]
// CHECK-LABEL: func.func @conv_bn
// CHECK-NEXT:    %[[W:.*]] = graph.constant dense<{{\[\[\[\[}}2.000000e+00]]], {{\[\[\[}}5.000000e-01]]]]> : tensor<2x1x1x1xf32>
// CHECK-NEXT:    %[[B:.*]] = graph.constant dense<[1.000000e+00, -1.500000e+00]> : tensor<2xf32>
// CHECK-NEXT:    %[[Y:.*]] = graph.conv %x, %[[W]], %[[B]] {{.*}} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
// CHECK-NEXT:    func.return %[[Y]]
func.func @conv_bn(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = graph.constant dense<1.0> : tensor<2x1x1x1xf32>
  %gamma = graph.constant dense<[4.0, 1.0]> : tensor<2xf32>
  %beta = graph.constant dense<[1.0, -1.0]> : tensor<2xf32>
  %mean = graph.constant dense<[0.0, 1.0]> : tensor<2xf32>
  %var = graph.constant dense<[4.0, 4.0]> : tensor<2xf32>
  %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = graph.batch_norm %y, %gamma, %beta, %mean, %var {epsilon = 0.0 : f32} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %z : tensor<1x2x2x2xf32>
}

// conv * c + d with per-channel constants -> one conv
// CHECK-LABEL: func.func @conv_mul_add
// CHECK:         %[[Y:.*]] = graph.conv
// CHECK-NEXT:    func.return %[[Y]]
func.func @conv_mul_add(%x: tensor<1x1x2x2xf32>) -> tensor<1x2x2x2xf32> {
  %w = graph.constant dense<1.0> : tensor<2x1x1x1xf32>
  %c = graph.constant dense<[[[2.0]], [[3.0]]]> : tensor<2x1x1xf32>
  %d = graph.constant dense<[[[[1.0]], [[-1.0]]]]> : tensor<1x2x1x1xf32>
  %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %m = graph.mul %c, %y : (tensor<2x1x1xf32>, tensor<1x2x2x2xf32>) -> tensor<1x2x2x2xf32>
  %a = graph.add %m, %d : (tensor<1x2x2x2xf32>, tensor<1x2x1x1xf32>) -> tensor<1x2x2x2xf32>
  func.return %a : tensor<1x2x2x2xf32>
}

// The conv result is used twice: nothing folds.
// CHECK-LABEL: func.func @shared
// CHECK:         graph.batch_norm
func.func @shared(%x: tensor<1x1x2x2xf32>) -> (tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>) {
  %w = graph.constant dense<1.0> : tensor<2x1x1x1xf32>
  %p = graph.constant dense<1.0> : tensor<2xf32>
  %y = graph.conv %x, %w {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x1x2x2xf32>, tensor<2x1x1x1xf32>) -> tensor<1x2x2x2xf32>
  %z = graph.batch_norm %y, %p, %p, %p, %p {epsilon = 1.0e-05 : f32} : (tensor<1x2x2x2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<1x2x2x2xf32>
  func.return %y, %z : tensor<1x2x2x2xf32>, tensor<1x2x2x2xf32>
}
