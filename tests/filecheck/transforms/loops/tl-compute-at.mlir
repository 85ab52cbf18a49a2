// RUN: mlc-opt %s -p 'tl-apply-schedule{text="lower mm; lower epi; split mm/m 4; reorder mm/m.o mm/n mm/m.i mm/k; reverse_compute_at epi mm/n"}' | filecheck %s --check-prefix=FUSE
// RUN: mlc-opt %s -p 'tl-apply-schedule{text="lower mm; split mm/m 4; reorder mm/m.o mm/n mm/m.i mm/k; cache_write mm 0 mm/m.i; cache_read mm 1 mm/m.i 1,0"}' | filecheck %s --check-prefix=TILE
// RUN: mlc-opt %s -p 'tl-apply-schedule{text="lower pro; lower gemm; split gemm/m 3; compute_at pro gemm/m.i"}' | filecheck %s --check-prefix=PRO
// RUN: not mlc-opt %s -p 'tl-apply-schedule{text="lower mm; reverse_compute_at epi mm/k"}' 2>&1 | filecheck %s --check-prefix=ILLEGAL
// RUN: not mlc-opt %s -p 'tl-apply-schedule{text="lower epi; compute_at mm epi/i"}' 2>&1 | filecheck %s --check-prefix=NOT-ELEMENTWISE

// The bias + relu epilogue runs inside the matmul's output loop n, over the m.i points
// that iteration finished (after the reduction loop k).
// FUSE:      tl.for %m.o = 0 to 2 {
// FUSE-NEXT:   tl.for %[[N:.*]] = 0 to 6 {
// FUSE-NEXT:     tl.for %m.i = 0 to 4 {
// FUSE-NEXT:       tl.for %k = 0 to 4 {
// FUSE-NEXT:         tl.block "mm"
// FUSE:          tl.for %[[MI:.*]] = 0 to 4 {
// FUSE-NEXT:       tl.block "epi" iterators(i: 8 parallel, j: 6 parallel) at(i = %m.o * 4 + %[[MI]], j = %[[N]]) ins(%C[i, j] : memref<8x6xf32>, %bias[j] : memref<6xf32>)
// FUSE-NOT:  tl.kernel "epi"

// A 4x1 register tile of C, loaded before m.i and stored after it, and a packed 1x4
// panel of B (transposed).
// TILE:      %C_local = memref.alloc() : memref<4x1xf32>
// TILE-NEXT: %B_local = memref.alloc() : memref<1x4xf32>
// TILE:      tl.block "mm_load" {{.*}} ins(%C[o0 * 4 + t0, o1 + t1] : memref<8x6xf32>) outs(%C_local[t0, t1] : memref<4x1xf32>)
// TILE:      tl.block "mm_cache" {{.*}} ins(%B[t0, o0 + t1] pad 0.000000e+00 : memref<4x6xf32>) outs(%B_local[t1, t0] : memref<1x4xf32>)
// TILE:      tl.block "mm" {{.*}} ins(%A[m, k] : memref<8x4xf32>, %B_local[n mod 1, k] : memref<1x4xf32>) outs(%C_local[m mod 4, n mod 1] : memref<4x1xf32>)
// TILE:      tl.block "mm_store" {{.*}} ins(%C_local[t0, t1] : memref<4x1xf32>) outs(%C[o0 * 4 + t0, o1 + t1] : memref<8x6xf32>)
// TILE:      memref.dealloc %B_local : memref<1x4xf32>
// TILE-NEXT: memref.dealloc %C_local : memref<4x1xf32>

// The relu prologue computes one row of A (all of k) per row of the GEMM, clipped to the
// rows that exist (8 is not a multiple of 3).
// PRO:      tl.for %m.o = 0 to 3 {
// PRO-NEXT:   tl.for %m.i = 0 to 3 {
// PRO-NEXT:     tl.for %[[K:.*]] = 0 to 4 {
// PRO-NEXT:       tl.block "pro" iterators(i: 8 parallel, k: 4 parallel) at(i = %m.o * 3 + %m.i, k = %[[K]]) where(i < 8)
// PRO:          tl.block "gemm" {{.*}} ins(%A[m, k] : memref<8x4xf32>

// NOT-ELEMENTWISE: error: in pass 'tl-apply-schedule': cannot compute tl.block "mm" at loop 'epi/i': it must be elementwise

// ILLEGAL: error: in pass 'tl-apply-schedule': cannot move tl.block "epi" into loop 'mm/k': loop 'mm/k' binds a reduction iterator of "mm", so its output is not complete after an iteration

func.func @f(%A: memref<8x4xf32>, %B: memref<4x6xf32>, %bias: memref<6xf32>, %C: memref<8x6xf32>, %D: memref<8x6xf32>) {
  tl.kernel "mm" iterators(m: 8 parallel, n: 6 parallel, k: 4 reduction)
      ins(%A[m, k] : memref<8x4xf32>, %B[k, n] : memref<4x6xf32>)
      outs(%C[m, n] init 0.0 : memref<8x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  tl.kernel "epi" iterators(i: 8 parallel, j: 6 parallel)
      ins(%C[i, j] : memref<8x6xf32>, %bias[j] : memref<6xf32>)
      outs(%D[i, j] : memref<8x6xf32>) {
  ^bb0(%x: f32, %y: f32, %d: f32):
    %s = arith.addf %x, %y : f32
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %s, %z : f32
    tl.yield %r : f32
  }
  func.return
}

func.func @prologue(%X: memref<8x4xf32>, %A: memref<8x4xf32>, %B: memref<4x6xf32>, %C: memref<8x6xf32>) {
  tl.kernel "pro" iterators(i: 8 parallel, k: 4 parallel)
      ins(%X[i, k] : memref<8x4xf32>)
      outs(%A[i, k] : memref<8x4xf32>) {
  ^bb0(%x: f32, %a: f32):
    %z = arith.constant 0.0 : f32
    %r = arith.maximumf %x, %z : f32
    tl.yield %r : f32
  }
  tl.kernel "gemm" iterators(m: 8 parallel, n: 6 parallel, k: 4 reduction)
      ins(%A[m, k] : memref<8x4xf32>, %B[k, n] : memref<4x6xf32>)
      outs(%C[m, n] init 0.0 : memref<8x6xf32>) {
  ^bb0(%a: f32, %b: f32, %c: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    tl.yield %s : f32
  }
  func.return
}
