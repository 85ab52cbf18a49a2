// RUN: mlc-opt %s --split-input-file --verify-diagnostics

func.func @out_of_bounds(%x: memref<8xf32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op input #0 index 0 (i + 1) ranges over [1, 8] but dimension 0 of memref<8xf32> has size 8; give the input a pad value}}
  tl.kernel "shift" iterators(i: 8 parallel) ins(%x[i + 1] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @reduction_in_output(%x: memref<8xf32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op reduction iterator 'i' indexes output #0}}
  tl.kernel "bad" iterators(i: 8 reduction) ins(%x[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @parallel_not_in_output(%x: memref<8x4xf32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op parallel iterator 'j' does not index output #0: every value of it would write the same elements; make it a reduction}}
  tl.kernel "bad" iterators(i: 8 parallel, j: 4 parallel) ins(%x[i, j] : memref<8x4xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @zero_extent(%y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op iterator 'i' has extent 0; extents must be > 0}}
  tl.kernel "bad" iterators(i: 0 parallel) outs(%y[i] : memref<8xf32>) {
  ^bb0(%b: f32):
    tl.yield %b : f32
  }
  func.return
}

// -----

func.func @wrong_arg_type(%x: memref<8xi32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op body argument #0 has type f32 but input #0 has element type i32}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%x[i] : memref<8xi32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @wrong_yield(%x: memref<8xf32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op body yields (f32, f32) but the outputs have element types (f32)}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%x[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a, %b : f32, f32
  }
  func.return
}

// -----

func.func @rank_mismatch(%x: memref<8x2xf32>, %y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op index map of input #0 has 1 results but memref<8x2xf32> has rank 2}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%x[i] : memref<8x2xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @captured(%x: memref<8xf32>, %y: memref<8xf32>, %s: f32) {
  // expected-error@+1 {{'tl.kernel' op the body uses a value defined outside the tl.kernel (operand of arith.addf); bodies only use their block arguments and values they define}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%x[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    %r = arith.addf %a, %s : f32
    tl.yield %r : f32
  }
  func.return
}

// -----

func.func @unknown_index(%y: memref<8xindex>) {
  tl.kernel "iota" iterators(i: 8 parallel) outs(%y[i] : memref<8xindex>) {
  ^bb0(%b: index):
    // expected-error@+1 {{'tl.index' op 'j' is not an iterator of the enclosing tl.kernel (iterators: i)}}
    %j = tl.index "j"
    tl.yield %j : index
  }
  func.return
}

// -----

func.func @unknown_iterator_name(%y: memref<8xf32>) {
  // expected-error@+1 {{unknown iterator 'j' (iterators: i)}}
  tl.kernel "bad" iterators(i: 8 parallel) outs(%y[j] : memref<8xf32>) {
  ^bb0(%b: f32):
    tl.yield %b : f32
  }
  func.return
}

// -----

func.func @in_place(%y: memref<8xf32>) {
  // expected-error@+1 {{'tl.kernel' op output #0 is also an input; read its current value through the output's body argument instead}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%y[i] : memref<8xf32>) outs(%y[i] : memref<8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @bad_pad_type(%x: memref<8xi32>, %y: memref<8xi32>) {
  // expected-error@+1 {{0.5 is not a value of type i32}}
  tl.kernel "bad" iterators(i: 8 parallel) ins(%x[i - 1] pad 0.5 : memref<8xi32>) outs(%y[i] : memref<8xi32>) {
  ^bb0(%a: i32, %b: i32):
    tl.yield %a : i32
  }
  func.return
}

// -----

func.func @block_domain(%x: memref<60xf32>) {
  tl.for %o = 0 to 8 {
    tl.for %i = 0 to 8 {
      // expected-error@+1 {{'tl.block' op iterator 'm' = %o * 8 + %i ranges over [0, 63] outside its extent 60; add a predicate `where(m < 60)`}}
      tl.block "b" iterators(m: 60 parallel) at(m = %o * 8 + %i) outs(%x[m] : memref<60xf32>) {
      ^bb0(%b: f32):
        tl.yield %b : f32
      }
    }
  }
  func.return
}

// -----

func.func @parallel_reduction(%x: memref<8x4xf32>, %y: memref<8xf32>) {
  tl.for %i = 0 to 8 {
    // expected-error@+1 {{'tl.for' op parallel loop carries a reduction: iterator 'k' of tl.block "sum" is bound to its induction variable}}
    tl.for %k = 0 to 4 parallel {
      tl.block "sum" iterators(i: 8 parallel, k: 4 reduction) at(i = %i, k = %k) ins(%x[i, k] : memref<8x4xf32>) outs(%y[i] : memref<8xf32>) {
      ^bb0(%a: f32, %b: f32):
        %s = arith.addf %b, %a : f32
        tl.yield %s : f32
      }
    }
  }
  func.return
}

// -----

func.func @parallel_same_elements(%y: memref<8xf32>) {
  // expected-error@+1 {{'tl.for' op tl.block "b" writes the same elements of a buffer in every iteration of this parallel loop (nothing it writes depends on the induction variable)}}
  tl.for %r = 0 to 4 parallel {
    tl.for %i = 0 to 8 {
      tl.block "b" iterators(i: 8 parallel) at(i = %i) outs(%y[i] : memref<8xf32>) {
      ^bb0(%b: f32):
        tl.yield %b : f32
      }
    }
  }
  func.return
}

// -----

func.func @parallel_store(%y: memref<8xf32>, %v: f32) {
  %c0 = arith.constant 0 : index
  // expected-error@+1 {{'tl.for' op memref.store writes the same elements of a buffer in every iteration of this parallel loop (nothing it writes depends on the induction variable)}}
  tl.for %r = 0 to 4 parallel {
    memref.store %v, %y[%c0] : memref<8xf32>
  }
  func.return
}

// -----

func.func @vector_width() {
  // expected-error@+1 {{'tl.for' op vector width 8 does not divide the trip count 60; mark the loop `masked` or split it}}
  tl.for %i = 0 to 60 vectorize(8) {
  }
  func.return
}

// -----

func.func @bad_step() {
  // expected-error@+1 {{'tl.for' op step must be positive, got 0}}
  tl.for %i = 0 to 60 step 0 {
  }
  func.return
}

// -----

func.func @non_affine(%x: memref<8x8xf32>, %y: memref<8x8xf32>) {
  // expected-error@+1 {{non-affine product: one factor must be a constant}}
  tl.kernel "bad" iterators(i: 8 parallel, j: 8 parallel) ins(%x[i * j, j] : memref<8x8xf32>) outs(%y[i, j] : memref<8x8xf32>) {
  ^bb0(%a: f32, %b: f32):
    tl.yield %a : f32
  }
  func.return
}

// -----

func.func @wrong_binding_order(%y: memref<8xf32>) {
  tl.for %i = 0 to 8 {
    // expected-error@+1 {{expected a binding of 'i', got 'j'}}
    tl.block "b" iterators(i: 8 parallel) at(j = %i) outs(%y[i] : memref<8xf32>) {
    ^bb0(%b: f32):
      tl.yield %b : f32
    }
  }
  func.return
}
