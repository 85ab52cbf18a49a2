// mlc-regression v1
// transform: pipeline graph-blocked-layout{block=2}
// input: float32 [2] [-1.461358666419983, 0.0]
// input: float32 [2, 2, 4, 4] [[[[-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.9999899864196777], [-0.0, 3.6281704902648926, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0]], [[-0.0, -0.0, -0.0, -0.0], [-0.0, 0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0]]], [[[-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0]], [[-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [-0.0, -0.0, -0.0, -0.0], [-0.0, 0.0, -0.0, -0.0]]]]
// note: failed with GraphError: graph.depthwise_conv_blocked weight must have rank 3, got shape (1, 3, 3, 2)
builtin.module {
  func.func @main(%0: tensor<2xf32>, %1: tensor<2x2x4x4xf32>) -> (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x3x4xf32>, tensor<2x2x4x1xf32>) {
    %2 = graph.to_blocked %1 {block = 2 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x1x4x4x2xf32>
    %3 = graph.from_blocked %2 : (tensor<2x1x4x4x2xf32>) -> tensor<2x2x4x4xf32>
    %4 = graph.neg %3 : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
    %5 = graph.to_blocked %3 {block = 1 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4x1xf32>
    %6 = graph.from_blocked %5 : (tensor<2x2x4x4x1xf32>) -> tensor<2x2x4x4xf32>
    %7 = graph.to_blocked %3 {block = 2 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x1x4x4x2xf32>
    %8 = graph.from_blocked %7 : (tensor<2x1x4x4x2xf32>) -> tensor<2x2x4x4xf32>
    %9 = graph.lp_pool %6 {p = 1 : i64, kernel_shape = array<i64: 2, 1>, strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, ceil_mode = false} : (tensor<2x2x4x4xf32>) -> tensor<2x2x3x4xf32>
    %10 = graph.constant dense<[[[[-0.310232729, 0.321494222, 1.9754169], [-0.794123828, -1.34520793, -0.0937567875], [0.0987693816, 0.214502901, -0.233566776]]], [[[0.89396739, 0.761095107, -0.957913458], [0.442329466, 0.425599515, -1.18841112], [-1.19215858, 0.26082772, 0.295941532]]]]> : tensor<2x1x3x3xf32>
    %11 = graph.constant dense<[1.15553093, 0.864231169]> : tensor<2xf32>
    %12 = graph.conv %6, %10, %11 {strides = array<i64: 1, 2>, pads = array<i64: 1, 1, 1, 0>, dilations = array<i64: 1, 2>, group = 2 : i64} : (tensor<2x2x4x4xf32>, tensor<2x1x3x3xf32>, tensor<2xf32>) -> tensor<2x2x4x1xf32>
    func.return %4, %8, %9, %12 : tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x3x4xf32>, tensor<2x2x4x1xf32>
  }
}
