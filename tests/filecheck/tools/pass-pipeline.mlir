// RUN: mlc-opt %s --pass-pipeline='builtin.module(graph-canonicalize,convert-graph-to-tl,convert-tl-kernel-to-loops{keep_inits=true})' | filecheck %s
// RUN: mlc-opt %s -p 'builtin.module(graph-canonicalize,convert-graph-to-tl,convert-tl-kernel-to-loops{keep_inits=true})' | filecheck %s
// RUN: mlc-opt %s -p 'graph-canonicalize,convert-graph-to-tl,convert-tl-kernel-to-loops{keep_inits=true}' | filecheck %s
// RUN: cat %s | mlc-opt - --pass-pipeline='any(graph-canonicalize,convert-graph-to-tl,convert-tl-kernel-to-loops)' | filecheck %s
// RUN: not mlc-opt %s --pass-pipeline='builtin.module(func.func(cse))' 2>&1 | filecheck %s --check-prefix=NESTED
// RUN: not mlc-opt %s -p 'tl-split{kernel="relu_1" loop="i" factor=4' 2>&1 | filecheck %s --check-prefix=UNCLOSED
// RUN: not mlc-opt %s -p 'tl-split{kernel="relu_1" loop="i" factor=four}' 2>&1 | filecheck %s --check-prefix=TYPE
// RUN: not mlc-opt %s -t llvm 2>&1 | filecheck %s --check-prefix=TARGET

// MLIR's `builtin.module(...)` pipelines (with --pass-pipeline or -p) and xDSL's flat ones.
// CHECK: func.func @f
// CHECK: tl.for

// NESTED:     mlc-opt: error: nested pass managers are not supported
// NESTED-NOT: Traceback
// UNCLOSED:   mlc-opt: error: malformed pass pipeline 'tl-split{kernel="relu_1" loop="i" factor=4': unclosed '{' (missing '}')
// TYPE:       mlc-opt: error: pass 'tl-split': option 'factor' expects an integer, got 'four'
// TARGET:     mlc-opt: error: target 'llvm' cannot print this module {{.*}}: lower it first with -p convert-graph-to-tl,convert-tl-kernel-to-loops,convert-tl-to-llvm

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %r = graph.relu %x : (tensor<4xf32>) -> tensor<4xf32>
  func.return %r : tensor<4xf32>
}
