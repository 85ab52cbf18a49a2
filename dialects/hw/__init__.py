"""Hardware dialects: one module per target (`x86`: `hw.x86`, `accel`: the simulated
accelerator).

The `hw.x86` ops are tensor intrinsics on `memref` tiles (destination style, like `tl`):
each reads input tiles and accumulates into an output tile, a tile being a buffer and the
index of its first element. The semantics of every `hw.x86` op is the tensor expression
of the intrinsic declared for it (`mlc.dialects.hw.intrinsics`, `mlc.targets.x86`), so the
interpreter (`mlc.interpreters.hw`) and the matcher (`mlc.transforms.loops.tensorize`)
share one definition.
"""
