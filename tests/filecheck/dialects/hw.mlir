// RUN: mlc-opt %s | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// The hardware dialects parse and print through mlc-opt (mlc's `hw` replaces xDSL's
// CIRCT `hw` there).

// CHECK-LABEL: func.func @vnni
// CHECK:         hw.x86.vpdpbusd %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] {lanes = 16 : i64} : memref<4x64xi32>, memref<4x8xi8>, memref<2x64x4xi8>
func.func @vnni(%C: memref<4x64xi32>, %A: memref<4x8xi8>, %B: memref<2x64x4xi8>, %i: index, %j: index, %k: index, %kb: index) {
  %c0 = arith.constant 0 : index
  hw.x86.vpdpbusd %C[%i, %j], %A[%i, %k], %B[%kb, %j, %c0] {lanes = 16 : i64} : memref<4x64xi32>, memref<4x8xi8>, memref<2x64x4xi8>
  func.return
}

// CHECK-LABEL: func.func @accel
// CHECK:         hw.accel.program(%{{.*}}, %{{.*}}) : (tensor<16x16xi8>, tensor<16x16xi8>) -> tensor<16x16xi32>
// CHECK:           hw.accel.gemm inp[0], wgt[0] -> acc[0] reset after(%{{.*}}, %{{.*}})
// CHECK:           hw.accel.store acc[0] -> %{{.*}}[0] stride 16 rows 16 cols 16 after(%{{.*}}) : memref<16x16xi32>
func.func @accel(%a: tensor<16x16xi8>, %b: tensor<16x16xi8>) -> tensor<16x16xi32> {
  %c = hw.accel.program(%a, %b) : (tensor<16x16xi8>, tensor<16x16xi8>) -> tensor<16x16xi32> {
  ^bb0(%A: memref<16x16xi8>, %B: memref<16x16xi8>, %C: memref<16x16xi32>):
    %0 = hw.accel.load %A[0] stride 16 rows 16 cols 16 -> inp[0] : memref<16x16xi8>
    %1 = hw.accel.load %B[0] stride 16 rows 16 cols 16 -> wgt[0] : memref<16x16xi8>
    %2 = hw.accel.gemm inp[0], wgt[0] -> acc[0] reset after(%0, %1)
    %3 = hw.accel.store acc[0] -> %C[0] stride 16 rows 16 cols 16 after(%2) : memref<16x16xi32>
  }
  func.return %c : tensor<16x16xi32>
}
