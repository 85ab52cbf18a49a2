// RUN: mlc-opt %s -p convert-graph-to-tl | filecheck %s
// RUN: mlc-opt %s -p 'convert-graph-to-tl,convert-tl-kernel-to-loops' | filecheck %s --check-prefix=LOOPS
// RUN: mlc-opt %examples/tiny_resnet.onnx -p 'convert-graph-to-tl,convert-tl-kernel-to-loops' | filecheck %s --check-prefix=CNN

// CHECK:       "memref.global"() <{sym_name = "__constant_0", type = memref<3xf32>, initial_value = dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]> : tensor<3xf32>, sym_visibility = "private", constant}>
// CHECK-LABEL: func.func @relu_add(%{{.*}}: memref<2x3xf32>) -> memref<2x3xf32>
// CHECK:         %[[C:.*]] = memref.get_global @__constant_0 : memref<3xf32>
// CHECK:         %[[R:.*]] = memref.alloc() : memref<2x3xf32>
// CHECK:         tl.kernel "relu" iterators(i0: 2 parallel, i1: 3 parallel)
// CHECK:           arith.maximumf
// CHECK:         %[[S:.*]] = memref.alloc() : memref<2x3xf32>
// CHECK:         tl.kernel "add" iterators(i0: 2 parallel, i1: 3 parallel) ins(%[[R]][i0, i1] : memref<2x3xf32>, %[[C]][i1] : memref<3xf32>) outs(%[[S]][i0, i1] : memref<2x3xf32>)
// CHECK:         func.return %[[S]] : memref<2x3xf32>

// LOOPS-LABEL: func.func @relu_add
// LOOPS-NOT:   tl.kernel
// LOOPS:       tl.for
// LOOPS:       tl.block "add"
func.func @relu_add(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %c = graph.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
  %r = graph.relu %x : (tensor<2x3xf32>) -> tensor<2x3xf32>
  %s = graph.add %r, %c : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  func.return %s : tensor<2x3xf32>
}

// CHECK-LABEL: func.func @matmul
// CHECK:         tl.kernel "matmul" iterators({{.*}}k: 3 reduction) ins({{.*}}) outs(%{{.*}} init 0.000000e+00 : memref<2x4xf32>)
// CHECK:           arith.mulf
// CHECK-NEXT:      arith.addf
func.func @matmul(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %y = graph.matmul %a, %b : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  func.return %y : tensor<2x4xf32>
}

// A returned argument is copied into a buffer the function allocates.
// CHECK-LABEL: func.func @identity(%{{.*}}: memref<4xi64>) -> memref<4xi64>
// CHECK:         %[[A:.*]] = memref.alloc() : memref<4xi64>
// CHECK:         tl.kernel "copy"
// CHECK:         func.return %[[A]] : memref<4xi64>
func.func @identity(%x: tensor<4xi64>) -> tensor<4xi64> {
  func.return %x : tensor<4xi64>
}

// Reshape is a copy over the row-major linear index.
// CHECK-LABEL: func.func @reshape
// CHECK:         tl.kernel "reshape" iterators({{.*}}) ins(%{{.*}}[({{.*}}) floordiv 3, ({{.*}}) mod 3] : memref<2x3xf32>)
func.func @reshape(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %y = graph.reshape %x : (tensor<2x3xf32>) -> tensor<3x2xf32>
  func.return %y : tensor<3x2xf32>
}

// CNN-LABEL: func.func @main
// CNN-NOT:   graph.
// CNN:       tl.block "conv"
// CNN:       func.return
