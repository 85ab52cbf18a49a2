// RUN: mlc-opt %s -p convert-tl-to-llvm | filecheck %s
// RUN: mlc-opt %s | filecheck %s --check-prefix=ROUNDTRIP

// A tl.check branches to a block that stores the check's number (1 + its place in the
// message table) into @mlc_status; the table is the JSON global @mlc_check_messages.

// ROUNDTRIP:   tl.check %{{.*}}, "index out of range"

// CHECK:       llvm.mlir.global external @mlc_status() {addr_space = 0 : i32, alignment = 8 : i64} : i64
// CHECK:       llvm.mlir.global external @mlc_check_messages(dense<
// CHECK-LABEL: llvm.func @pick
// CHECK:         llvm.cond_br %{{.*}}, ^[[OK:.*]], ^[[FAIL:.*]]
// CHECK:       ^[[FAIL]]:
// CHECK:         %[[S:.*]] = llvm.mlir.addressof @mlc_status : !llvm.ptr
// CHECK:         llvm.store %{{.*}}, %[[S]] {alignment = 8 : i64} : i64, !llvm.ptr
// CHECK:         llvm.br ^[[OK]]
func.func @pick(%x: memref<10xf32>, %i: memref<1xi64>) -> memref<1xf32> {
  %c0 = arith.constant 0 : index
  %c10 = arith.constant 10 : index
  %raw = memref.load %i[%c0] : memref<1xi64>
  %idx = arith.index_cast %raw : i64 to index
  %lo = arith.cmpi sge, %idx, %c0 : index
  %hi = arith.cmpi slt, %idx, %c10 : index
  %ok = arith.andi %lo, %hi : i1
  tl.check %ok, "index out of range"
  %safe = arith.select %ok, %idx, %c0 : index
  %v = memref.load %x[%safe] : memref<10xf32>
  %out = memref.alloc() : memref<1xf32>
  memref.store %v, %out[%c0] : memref<1xf32>
  func.return %out : memref<1xf32>
}
