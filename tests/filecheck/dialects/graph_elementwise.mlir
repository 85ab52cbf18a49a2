// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%x: tensor<2x3xf32>, %y: tensor<3xf32>, %b: tensor<2x3xi1>) -> tensor<2x3xf32> {
  // CHECK: graph.constant dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>
  %c = graph.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  // CHECK: graph.add %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %a = graph.add %x, %y : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: graph.leaky_relu %{{.*}} {alpha = 1.000000e-01 : f32}
  %l = graph.leaky_relu %a {alpha = 0.1 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: graph.max %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %m = graph.max %l, %c, %y : (tensor<2x3xf32>, tensor<3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: graph.greater {{.*}} -> tensor<2x3xi1>
  %g = graph.greater %m, %c : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xi1>
  %g2 = graph.and %g, %b : (tensor<2x3xi1>, tensor<2x3xi1>) -> tensor<2x3xi1>
  // CHECK: graph.where
  %w = graph.where %g2, %m, %x : (tensor<2x3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: graph.clip %{{.*}} {{{.*}}max = 6.000000e+00 : f32{{.*}}}
  %r = graph.clip %w {min = 0.0 : f32, max = 6.0 : f32} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: graph.cast %{{.*}} : (tensor<2x3xf32>) -> tensor<2x3xi32>
  %i = graph.cast %r : (tensor<2x3xf32>) -> tensor<2x3xi32>
  %f = graph.cast %i : (tensor<2x3xi32>) -> tensor<2x3xf32>
  func.return %f : tensor<2x3xf32>
}
