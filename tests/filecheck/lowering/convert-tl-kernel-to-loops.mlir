// RUN: mlc-opt %s -p convert-tl-kernel-to-loops | filecheck %s
// RUN: mlc-opt %s -p 'convert-tl-kernel-to-loops{keep_inits=true}' | filecheck %s --check-prefix=KEEP

// CHECK-LABEL: func.func @matmul
// CHECK:      tl.for %m = 0 to 4 {
// CHECK-NEXT:   tl.for %n = 0 to 3 {
// CHECK-NEXT:     tl.block "matmul_init" iterators(m: 4 parallel, n: 3 parallel) at(m = %m, n = %n) outs(%{{.*}}[m, n] : memref<4x3xf32>) {
// CHECK:            arith.constant 0.000000e+00 : f32
// CHECK:      tl.for %m_1 = 0 to 4 {
// CHECK-NEXT:   tl.for %n_1 = 0 to 3 {
// CHECK-NEXT:     tl.for %k = 0 to 2 {
// CHECK-NEXT:       tl.block "matmul" iterators(m: 4 parallel, n: 3 parallel, k: 2 reduction) at(m = %m_1, n = %n_1, k = %k) ins(%{{.*}}[m, k] : memref<4x2xf32>, %{{.*}}[k, n] : memref<2x3xf32>) outs(%{{.*}}[m, n] : memref<4x3xf32>) {
// CHECK-NOT:  tl.kernel

// KEEP-LABEL: func.func @matmul
// KEEP-NOT:   matmul_init
// KEEP:       tl.block "matmul" {{.*}} outs(%{{.*}}[m, n] init 0.000000e+00 : memref<4x3xf32>)
func.func @matmul(%A: memref<4x2xf32>, %B: memref<2x3xf32>, %C: memref<4x3xf32>) {
  tl.kernel "matmul" iterators(m: 4 parallel, n: 3 parallel, k: 2 reduction)
      ins(%A[m, k] : memref<4x2xf32>, %B[k, n] : memref<2x3xf32>)
      outs(%C[m, n] init 0.0 : memref<4x3xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}

// CHECK-LABEL: func.func @sum_all
// CHECK:      tl.block "sum_all_init" iterators() at() outs(%{{.*}}[] : memref<f32>)
// CHECK:      tl.for %i = 0 to 5 {
// CHECK-NEXT:   tl.block "sum_all" iterators(i: 5 reduction) at(i = %i)
func.func @sum_all(%X: memref<5xf32>, %S: memref<f32>) {
  tl.kernel "sum_all" iterators(i: 5 reduction) ins(%X[i] : memref<5xf32>) outs(%S[] init 0.0 : memref<f32>) {
  ^bb0(%x: f32, %s: f32):
    %r = arith.addf %s, %x : f32
    tl.yield %r : f32
  }
  func.return
}
