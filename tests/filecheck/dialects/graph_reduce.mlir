// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @reduce_sum
// CHECK-NEXT: %{{.*}} = graph.reduce_sum %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_sum(%x: tensor<2x3xf32>) {
  %y = graph.reduce_sum %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_mean
// CHECK-NEXT: %{{.*}} = graph.reduce_mean %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_mean(%x: tensor<2x3xf32>) {
  %y = graph.reduce_mean %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_max
// CHECK-NEXT: %{{.*}} = graph.reduce_max %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_max(%x: tensor<2x3xf32>) {
  %y = graph.reduce_max %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_min
// CHECK-NEXT: %{{.*}} = graph.reduce_min %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_min(%x: tensor<2x3xf32>) {
  %y = graph.reduce_min %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_prod
// CHECK-NEXT: %{{.*}} = graph.reduce_prod %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_prod(%x: tensor<2x3xf32>) {
  %y = graph.reduce_prod %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_l1
// CHECK-NEXT: %{{.*}} = graph.reduce_l1 %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_l1(%x: tensor<2x3xf32>) {
  %y = graph.reduce_l1 %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_l2
// CHECK-NEXT: %{{.*}} = graph.reduce_l2 %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_l2(%x: tensor<2x3xf32>) {
  %y = graph.reduce_l2 %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_log_sum
// CHECK-NEXT: %{{.*}} = graph.reduce_log_sum %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_log_sum(%x: tensor<2x3xf32>) {
  %y = graph.reduce_log_sum %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_log_sum_exp
// CHECK-NEXT: %{{.*}} = graph.reduce_log_sum_exp %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_log_sum_exp(%x: tensor<2x3xf32>) {
  %y = graph.reduce_log_sum_exp %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @reduce_sum_square
// CHECK-NEXT: %{{.*}} = graph.reduce_sum_square %{{.*}} {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
func.func @reduce_sum_square(%x: tensor<2x3xf32>) {
  %y = graph.reduce_sum_square %x {axes = array<i64: 1>, keepdims = true} : (tensor<2x3xf32>) -> tensor<2x1xf32>
  func.return
}

// CHECK-LABEL: func.func @argmax
// CHECK-NEXT: %{{.*}} = graph.argmax %{{.*}} {axis = 1 : i64, keepdims = false, select_last_index = false} : (tensor<2x3xf32>) -> tensor<2xi64>
func.func @argmax(%x: tensor<2x3xf32>) {
  %i = graph.argmax %x {axis = 1 : i64, keepdims = false, select_last_index = false} : (tensor<2x3xf32>) -> tensor<2xi64>
  func.return
}

// CHECK-LABEL: func.func @argmin
// CHECK-NEXT: %{{.*}} = graph.argmin %{{.*}} {axis = 0 : i64, keepdims = true, select_last_index = true} : (tensor<2x3xi32>) -> tensor<1x3xi64>
func.func @argmin(%x: tensor<2x3xi32>) {
  %i = graph.argmin %x {axis = 0 : i64, keepdims = true, select_last_index = true} : (tensor<2x3xi32>) -> tensor<1x3xi64>
  func.return
}
