// mlc-regression v1
// transform: pattern mlc.transforms.graph.layout:BlockConv
// input: float32 [1] [0.0]
// input: float32 [1, 2, 1, 1] [[[[0.9442715644836426]], [[0.0]]]]
// note: failed with GraphError: graph.conv_blocked weight must have rank 5, got shape (1, 1, 1, 1, 2, 2)
builtin.module {
  func.func @main(%0: tensor<1xf32>, %1: tensor<1x2x1x1xf32>) -> tensor<1x2x1x1xf32> {
    %2 = graph.constant dense<[[[[0.125730217]], [[-0.132104859]]], [[[0.640422642]], [[0.104900114]]]]> : tensor<2x2x1x1xf32>
    %3 = graph.conv %1, %2 {strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64} : (tensor<1x2x1x1xf32>, tensor<2x2x1x1xf32>) -> tensor<1x2x1x1xf32>
    func.return %3 : tensor<1x2x1x1xf32>
  }
}
