// RUN: mlc-opt %s -p 'tl-split{kernel="matmul" loop="m" factor=4}' | filecheck %s --check-prefix=SPLIT
// RUN: mlc-opt %s -p 'tl-split{kernel="matmul" loop="m" factor=4},tl-reorder{kernel="matmul" order="m.o,n,m.i,k"},tl-parallel{kernel="matmul" loop="m.o"},tl-vectorize{kernel="matmul" loop="n" width=6},tl-unroll{kernel="matmul" loop="k" factor=2}' | filecheck %s --check-prefix=SCHED
// RUN: mlc-opt %s -p 'tl-apply-schedule{text="lower matmul; split matmul/m 4; parallel matmul/m.o"}' | filecheck %s --check-prefix=TEXT
// RUN: not mlc-opt %s -p 'tl-parallel{kernel="matmul" loop="k"}' 2>&1 | filecheck %s --check-prefix=ILLEGAL
// RUN: mlc-opt %s -p 'tl-fuse{kernel="matmul" outer="m" inner="n"}' | filecheck %s --check-prefix=FUSE
// RUN: mlc-opt %s -p 'tl-decompose-reduction{kernel="matmul" loop="k"}' | filecheck %s --check-prefix=DECOMPOSE
// RUN: mlc-opt %s -p 'tl-cache-read{kernel="matmul" operand=1 at="m" layout="1,0"}' | filecheck %s --check-prefix=PACK
// RUN: mlc-opt %s -p 'tl-cache-write{kernel="matmul" operand=0 at="m"}' | filecheck %s --check-prefix=CWRITE

// FUSE:      tl.for %m.n = 0 to 48 {
// FUSE-NEXT:   tl.for %k = 0 to 4 {
// FUSE-NEXT:     tl.block "matmul" {{.*}} at(m = %m.n floordiv 6, n = %m.n mod 6, k = %k)

// DECOMPOSE:      tl.block "matmul_init"
// DECOMPOSE:      tl.for %k = 0 to 4 {
// DECOMPOSE-NEXT:   tl.block "matmul" {{.*}} outs(%C[m, n] : memref<8x6xf32>)

// PACK:      %B_local = memref.alloc() : memref<6x4xf32>
// PACK:      tl.block "matmul_cache" {{.*}} ins(%B[t0, t1] {{.*}} outs(%B_local[t1, t0] : memref<6x4xf32>)
// PACK:      tl.block "matmul" {{.*}} ins(%A[m, k] : memref<8x4xf32>, %B_local[n, k] : memref<6x4xf32>)

// CWRITE:      %C_local = memref.alloc() : memref<8x6xf32>
// CWRITE:      tl.block "matmul_load"
// CWRITE:      tl.block "matmul" {{.*}} outs(%C_local[m, n] : memref<8x6xf32>)
// CWRITE:      tl.block "matmul_store" {{.*}} ins(%C_local[t0, t1] : memref<8x6xf32>) outs(%C[t0, t1] : memref<8x6xf32>)

// SPLIT:      tl.for %m.o = 0 to 2 {
// SPLIT-NEXT:   tl.for %m.i = 0 to 4 {
// SPLIT:          tl.block "matmul" {{.*}} at(m = %m.o * 4 + %m.i, n = %{{.*}}, k = %k)

// SCHED:      tl.for %m.o = 0 to 2 parallel {
// SCHED-NEXT:   tl.for %{{.*}} = 0 to 6 vectorize(6) {
// SCHED-NEXT:     tl.for %m.i = 0 to 4 {
// SCHED-NEXT:       tl.for %k = 0 to 4 unroll(2) {

// TEXT:       tl.for %m.o = 0 to 2 parallel {

// ILLEGAL: error: in pass 'tl-parallel': cannot parallelize loop 'matmul/k': it is bound to reduction iterator 'k'

func.func @matmul(%A: memref<8x4xf32>, %B: memref<4x6xf32>, %C: memref<8x6xf32>) {
  tl.kernel "matmul" iterators(m: 8 parallel, n: 6 parallel, k: 4 reduction)
      ins(%A[m, k] : memref<8x4xf32>, %B[k, n] : memref<4x6xf32>)
      outs(%C[m, n] init 0.0 : memref<8x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}
