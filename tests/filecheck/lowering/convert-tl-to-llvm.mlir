// RUN: mlc-opt %s -p convert-tl-to-llvm | filecheck %s
// RUN: mlc-opt %s -p convert-tl-to-llvm | mlc-opt | filecheck %s
// RUN: mlc-opt %s -p 'convert-tl-to-llvm{threads=false}' | filecheck %s --check-prefix=SERIAL

// A parallel loop becomes an outlined body (buffers as noalias arguments) run by
// GOMP_parallel; a vectorized block becomes vector<16xf32> code, its comparison an
// llvmx.fcmp and its select a lane-wise blend. The output re-parses (second RUN line).

// CHECK:       llvm.mlir.global external @mlc_num_threads()
// CHECK-LABEL: llvm.func @axpy(%{{.*}}: !llvm.ptr {llvm.noalias, llvm.align = 16 : i64}
// CHECK:         llvm.mlir.addressof @axpy_par0 : !llvm.ptr
// CHECK:         llvm.call @GOMP_parallel
// CHECK-LABEL: llvm.func internal @axpy_par0_body(%{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: !llvm.ptr {llvm.noalias}, %{{.*}}: i64, %{{.*}}: i64)
// CHECK:         llvm.load %{{.*}} {alignment = 4 : i64} : !llvm.ptr -> vector<16xf32>
// CHECK:         llvm.fmul %{{.*}}, %{{.*}} {fastmathFlags = #llvm.fastmath<contract>} : vector<16xf32>
// CHECK:         llvmx.fcmp "ogt" %{{.*}}, %{{.*}} : vector<16xf32> -> vector<16xi1>
// CHECK:         llvm.sext %{{.*}} : vector<16xi1> to vector<16xi32>
// CHECK:         llvm.store %{{.*}}, %{{.*}} {alignment = 4 : i64} : vector<16xf32>, !llvm.ptr
// CHECK-LABEL: llvm.func internal @axpy_par0(%{{.*}}: !llvm.ptr)
// CHECK:         llvm.call @omp_get_thread_num() : () -> i32
// CHECK:         llvm.call @axpy_par0_body
// CHECK:       llvm.func @GOMP_parallel(!llvm.ptr, !llvm.ptr, i32, i32)

// SERIAL-NOT:  GOMP_parallel
// SERIAL:      vector<16xf32>
func.func @axpy(%x: memref<64xf32>, %y: memref<64xf32>) {
  tl.for %i.o = 0 to 4 parallel {
    tl.for %i.i = 0 to 16 vectorize(16) {
      tl.block "axpy" iterators(i: 64 parallel) at(i = %i.o * 16 + %i.i) ins(%x[i] : memref<64xf32>) outs(%y[i] : memref<64xf32>) {
      ^bb0(%a: f32, %b: f32):
        %two = arith.constant 2.0 : f32
        %p = arith.mulf %a, %two : f32
        %s = arith.addf %b, %p : f32
        %c = arith.cmpf ogt, %s, %two : f32
        %r = arith.select %c, %s, %two : f32
        tl.yield %r : f32
      }
    }
  }
  func.return
}
