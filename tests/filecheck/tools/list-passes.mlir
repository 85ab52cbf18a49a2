// RUN: mlc-opt --list-passes | filecheck %s
// RUN: mlc-opt --help-pass tl-split | filecheck %s --check-prefix=HELP
// RUN: mlc-opt --help-pass fold-constants | filecheck %s --check-prefix=HELP-FOLD
// RUN: not mlc-opt --help-pass tl-spilt 2>&1 | filecheck %s --check-prefix=UNKNOWN
// RUN: mlc-opt --help | filecheck %s --check-prefix=USAGE

// --list-passes: mlc's passes, then xDSL's, each with the first sentence of its docstring.
// CHECK:      mlc passes:
// CHECK:        convert-graph-to-tl {{ *}}Lower every graph op to `tl.kernel`s on buffers
// CHECK:        tl-split {{ *}}`tl-split{kernel="mm" loop="m" factor=8}`: loop m -> m.o, m.i.
// CHECK:      xDSL passes:
// CHECK:        canonicalize {{ *}}Applies all canonicalization patterns.
// CHECK:        cse
// CHECK:      --help-pass NAME shows a pass's options.

// --help-pass: the docstring and each option with its type and default.
// HELP:      tl-split (mlc.transforms.loops.passes.TlSplitPass)
// HELP:      Options:
// HELP-NEXT:   kernel: a string (default: "")
// HELP-NEXT:   loop: a string (default: "")
// HELP-NEXT:   factor: an integer (default: 1)

// HELP-FOLD: Options:
// HELP-FOLD-NEXT: max-elements: an integer (default: 4194304)

// UNKNOWN: mlc-opt: error: unknown pass 'tl-spilt' (did you mean 'tl-split'?)

// The -p help is short and points to --list-passes instead of listing every pass.
// USAGE:     -p PASSES, --passes PASSES
// USAGE:     --list-passes lists the passes
// USAGE-NOT: convert-tl-kernel-to-loops
