// RUN: mlc-opt %s -p 'tl-outline-kernels,convert-tl-to-llvm,llvm-merge-kernels' | filecheck %s
// RUN: mlc-opt %s -p 'tl-outline-kernels,convert-tl-to-llvm,llvm-merge-kernels' | mlc-opt | filecheck %s

// Two loop nests that differ only in their trip count (48 and 80) become one kernel
// function whose trip count is its last argument; each call passes its own.

// CHECK-LABEL: llvm.func @mlc_kernel_
// CHECK-SAME:    (%{{[0-9]+}}: !llvm.ptr {llvm.noalias, llvm.align = 16 : i64}, %{{[0-9]+}}: !llvm.ptr {llvm.noalias, llvm.align = 16 : i64}, %[[N:[0-9]+]]: i64)
// CHECK-NOT:     llvm.mlir.constant(48)
// CHECK-NOT:     llvm.mlir.constant(80)
// CHECK:         llvm.icmp "slt" %{{.*}}, %[[N]] : i64
// CHECK-NOT:   llvm.func @mlc_kernel_
// CHECK-LABEL: llvm.func @twice
// CHECK:         %[[A:.*]] = llvm.mlir.constant(48) : i64
// CHECK:         llvm.call @[[K:mlc_kernel_[0-9a-f]+]](%{{.*}}, %{{.*}}, %[[A]]) {mlc.label = "double_a"
// CHECK:         %[[C:.*]] = llvm.mlir.constant(80) : i64
// CHECK:         llvm.call @[[K]](%{{.*}}, %{{.*}}, %[[C]]) {mlc.label = "double_c"
func.func @twice(%a: memref<48xf32>, %b: memref<48xf32>, %c: memref<80xf32>, %d: memref<80xf32>) {
  tl.for %i = 0 to 48 {
    tl.block "double_a" iterators(i: 48 parallel) at(i = %i) ins(%a[i] : memref<48xf32>) outs(%b[i] : memref<48xf32>) {
    ^bb0(%x: f32, %y: f32):
      %r = arith.addf %x, %x : f32
      tl.yield %r : f32
    }
  }
  tl.for %i = 0 to 80 {
    tl.block "double_c" iterators(i: 80 parallel) at(i = %i) ins(%c[i] : memref<80xf32>) outs(%d[i] : memref<80xf32>) {
    ^bb0(%x: f32, %y: f32):
      %r = arith.addf %x, %x : f32
      tl.yield %r : f32
    }
  }
  func.return
}
