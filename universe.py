"""xDSL plugin entry point: makes mlc's dialects and passes visible to xDSL tools.

mlc's `hw` dialect (hw.x86, hw.accel) shares its name with xDSL's CIRCT `hw` dialect, so
it is left out here (xdsl-opt keeps CIRCT's); `mlc-opt` and `mlc.context()` register
mlc's instead."""

from xdsl.universe import Universe

from mlc.registry import XDSL_NAME_CLASHES, all_dialect_factories, all_pass_factories

MLC_UNIVERSE = Universe(
    all_dialects={
        name: factory
        for name, factory in all_dialect_factories().items()
        if name not in XDSL_NAME_CLASHES
    },
    all_passes=all_pass_factories(),
)
