// RUN: mlc-opt %s | mlc-opt | filecheck %s
// RUN: mlc-opt %s --print-op-generic | mlc-opt | filecheck %s

// CHECK-LABEL: func.func @matmul
func.func @matmul(%A: memref<64x16xf32>, %B: memref<16x32xf32>, %C: memref<64x32xf32>) {
  // CHECK: tl.kernel "matmul" iterators(m: 64 parallel, n: 32 parallel, k: 16 reduction) ins(%{{.*}}[m, k] : memref<64x16xf32>, %{{.*}}[k, n] : memref<16x32xf32>) outs(%{{.*}}[m, n] init 0.000000e+00 : memref<64x32xf32>) {
  // CHECK-NEXT: ^bb0(%{{.*}}: f32, %{{.*}}: f32, %{{.*}}: f32):
  // CHECK: tl.yield %{{.*}} : f32
  tl.kernel "matmul" iterators(m: 64 parallel, n: 32 parallel, k: 16 reduction)
      ins(%A[m, k] : memref<64x16xf32>, %B[k, n] : memref<16x32xf32>)
      outs(%C[m, n] init 0.0 : memref<64x32xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}

// CHECK-LABEL: func.func @conv
func.func @conv(%I: memref<1x3x8x8xf32>, %W: memref<4x3x3x3xf32>, %O: memref<1x4x4x4xf32>) {
  // CHECK: ins(%{{.*}}[n, c, oh * 2 + kh - 1, ow * 2 + kw - 1] pad 0.000000e+00 : memref<1x3x8x8xf32>, %{{.*}}[f, c, kh, kw] : memref<4x3x3x3xf32>)
  tl.kernel "conv" iterators(n: 1 parallel, f: 4 parallel, oh: 4 parallel, ow: 4 parallel, c: 3 reduction, kh: 3 reduction, kw: 3 reduction)
      ins(%I[n, c, oh * 2 + kh - 1, ow * 2 + kw - 1] pad 0.0 : memref<1x3x8x8xf32>, %W[f, c, kh, kw] : memref<4x3x3x3xf32>)
      outs(%O[n, f, oh, ow] init 0.0 : memref<1x4x4x4xf32>) {
  ^bb0(%x: f32, %w: f32, %o: f32):
    %p = arith.mulf %x, %w : f32
    %s = arith.addf %o, %p : f32
    tl.yield %s : f32
  }
  func.return
}

// CHECK-LABEL: func.func @argmax
func.func @argmax(%X: memref<4x10xf32>, %V: memref<4xf32>, %I: memref<4xi64>) {
  // CHECK: outs(%{{.*}}[i] init 0xff800000 : memref<4xf32>, %{{.*}}[i] init 0 : memref<4xi64>)
  // CHECK: tl.index "j"
  tl.kernel "argmax" iterators(i: 4 parallel, j: 10 reduction)
      ins(%X[i, j] : memref<4x10xf32>)
      outs(%V[i] init 0xFF800000 : memref<4xf32>, %I[i] init 0 : memref<4xi64>) {
  ^bb0(%x: f32, %v: f32, %idx: i64):
    %j = tl.index "j"
    %ji = arith.index_cast %j : index to i64
    %gt = arith.cmpf ogt, %x, %v : f32
    %nv = arith.select %gt, %x, %v : f32
    %ni = arith.select %gt, %ji, %idx : i64
    tl.yield %nv, %ni : f32, i64
  }
  func.return
}

// CHECK-LABEL: func.func @loops
func.func @loops(%X: memref<60xf32>, %Y: memref<60xf32>) {
  // CHECK: tl.for %{{.*}} = 0 to 8 parallel {
  // CHECK: tl.for %{{.*}} = 0 to 8 vectorize(8) {
  // CHECK: tl.block "scale" iterators(m: 60 parallel) at(m = %{{.*}} * 8 + %{{.*}}) where(m < 60) ins(%{{.*}}[m] : memref<60xf32>) outs(%{{.*}}[m] : memref<60xf32>) {
  tl.for %mo = 0 to 8 parallel {
    tl.for %mi = 0 to 8 vectorize(8) {
      tl.block "scale" iterators(m: 60 parallel) at(m = %mo * 8 + %mi) where(m < 60)
          ins(%X[m] : memref<60xf32>) outs(%Y[m] : memref<60xf32>) {
      ^bb0(%x: f32, %y: f32):
        %s = arith.addf %x, %x : f32
        tl.yield %s : f32
      }
    }
  }
  // CHECK: tl.for %{{.*}} = 0 to 60 vectorize(8, masked) {
  // CHECK: tl.for %{{.*}} = 0 to 60 step 4 unroll(2) {
  // CHECK: memref.alloc() : memref<4xf32>
  // CHECK: memref.load
  // CHECK: memref.store
  tl.for %i = 0 to 60 vectorize(8, masked) {
  }
  tl.for %o = 0 to 60 step 4 unroll(2) {
    %buf = memref.alloc() : memref<4xf32>
    tl.for %t = 0 to 4 {
      %g = arith.addi %o, %t : index
      %v = memref.load %X[%g] : memref<60xf32>
      memref.store %v, %buf[%t] : memref<4xf32>
    }
    memref.dealloc %buf : memref<4xf32>
  }
  func.return
}
