// RUN: mlc import %examples/tiny_resnet.onnx | filecheck %s
// RUN: mlc import %examples/tiny_resnet.onnx | mlc-opt --print-op-generic | mlc-opt | filecheck %s
// RUN: not mlc import %s 2>&1 | filecheck %s --check-prefix=NOT-ONNX

// CHECK-LABEL: func.func @main(%image: tensor<1x3x32x32xf32> {mlc.name = "image"}) -> (tensor<1x10xf32> {mlc.name = "softmax_24"})
// CHECK: graph.conv %image, %conv0.w {{.*}}strides = array<i64: 1, 1>
// CHECK: graph.batch_norm
// CHECK: graph.relu
// CHECK: graph.max_pool
// CHECK: graph.add
// CHECK: graph.global_average_pool
// CHECK: graph.reshape {{.*}} -> tensor<1x32xf32>
// CHECK: graph.gemm
// CHECK: graph.softmax
// CHECK: func.return

// NOT-ONNX: mlc: error: {{.*}}mlc-import.mlir: not a valid ONNX model
