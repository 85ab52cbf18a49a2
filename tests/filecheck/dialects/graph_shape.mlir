// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @reshape
// CHECK-NEXT: %{{.*}} = graph.reshape %{{.*}} : (tensor<2x3xf32>) -> tensor<3x2xf32>
func.func @reshape(%x: tensor<2x3xf32>) {
  %y = graph.reshape %x : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return
}

// CHECK-LABEL: func.func @transpose
// CHECK-NEXT: %{{.*}} = graph.transpose %{{.*}} {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
func.func @transpose(%x: tensor<2x3xf32>) {
  %y = graph.transpose %x {perm = array<i64: 1, 0>} : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return
}

// CHECK-LABEL: func.func @concat
// CHECK-NEXT: %{{.*}} = graph.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
func.func @concat(%a: tensor<2x3xf32>, %b: tensor<2x1xf32>) {
  %z = graph.concat %a, %b {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x1xf32>) -> tensor<2x4xf32>
  func.return
}

// CHECK-LABEL: func.func @split
// CHECK-NEXT: %{{.*}}, %{{.*}} = graph.split %{{.*}} {axis = 0 : i64, sizes = array<i64: 1, 2>} : (tensor<3xf32>) -> (tensor<1xf32>, tensor<2xf32>)
func.func @split(%x: tensor<3xf32>) {
  %a, %b = graph.split %x {axis = 0 : i64, sizes = array<i64: 1, 2>} : (tensor<3xf32>) -> (tensor<1xf32>, tensor<2xf32>)
  func.return
}

// CHECK-LABEL: func.func @slice
// CHECK-NEXT: %{{.*}} = graph.slice %{{.*}} {starts = array<i64: 0, 2>, ends = array<i64: 2, -1>, steps = array<i64: 1, -2>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
func.func @slice(%x: tensor<2x3xf32>) {
  %y = graph.slice %x {starts = array<i64: 0, 2>, ends = array<i64: 2, -1>, steps = array<i64: 1, -2>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  func.return
}

// CHECK-LABEL: func.func @gather
// CHECK-NEXT: %{{.*}} = graph.gather %{{.*}}, %{{.*}} {axis = 0 : i64} : (tensor<5x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
func.func @gather(%x: tensor<5x3xf32>, %i: tensor<2xi64>) {
  %y = graph.gather %x, %i {axis = 0 : i64} : (tensor<5x3xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  func.return
}

// CHECK-LABEL: func.func @gather_elements
// CHECK-NEXT: %{{.*}} = graph.gather_elements %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
func.func @gather_elements(%x: tensor<2x3xf32>, %i: tensor<2x2xi64>) {
  %y = graph.gather_elements %x, %i {axis = 1 : i64} : (tensor<2x3xf32>, tensor<2x2xi64>) -> tensor<2x2xf32>
  func.return
}

// CHECK-LABEL: func.func @pad
// CHECK-NEXT: %{{.*}} = graph.pad %{{.*}} {pads = array<i64: 0, 1, 0, 2>, mode = "constant", value = 5.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x6xf32>
func.func @pad(%x: tensor<2x3xf32>) {
  %y = graph.pad %x {pads = array<i64: 0, 1, 0, 2>, mode = "constant", value = 5.000000e-01 : f32} : (tensor<2x3xf32>) -> tensor<2x6xf32>
  func.return
}

// CHECK-LABEL: func.func @expand
// CHECK-NEXT: %{{.*}} = graph.expand %{{.*}} {shape = array<i64: 2, 3>} : (tensor<3xf32>) -> tensor<2x3xf32>
func.func @expand(%x: tensor<3xf32>) {
  %y = graph.expand %x {shape = array<i64: 2, 3>} : (tensor<3xf32>) -> tensor<2x3xf32>
  func.return
}

// CHECK-LABEL: func.func @tile
// CHECK-NEXT: %{{.*}} = graph.tile %{{.*}} {repeats = array<i64: 2, 1>} : (tensor<2x3xf32>) -> tensor<4x3xf32>
func.func @tile(%x: tensor<2x3xf32>) {
  %y = graph.tile %x {repeats = array<i64: 2, 1>} : (tensor<2x3xf32>) -> tensor<4x3xf32>
  func.return
}
