// mlc-regression v1
// transform: pipeline convert-graph-to-tl
// input: float32 [2, 3] [[1.0, -0.0, 0.5], [-2.25, 3.0, 0.0]]
// input: float32 [1, 3] [[0.5, -1.0, 2.0]]
// note: an example of the format (hand-written); real files are written on failure
builtin.module {
  func.func @main(%0: tensor<2x3xf32>, %1: tensor<1x3xf32>) -> tensor<2x1xf32> {
    %2 = graph.add %0, %1 : (tensor<2x3xf32>, tensor<1x3xf32>) -> tensor<2x3xf32>
    %3 = graph.reduce_sum %2 {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
    func.return %3 : tensor<2x1xf32>
  }
}
