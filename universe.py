"""xDSL plugin entry point: makes mlc's dialects and passes visible to xDSL tools."""

from xdsl.universe import Universe

from mlc.registry import all_dialect_factories, all_pass_factories

MLC_UNIVERSE = Universe(
    all_dialects=all_dialect_factories(),
    all_passes=all_pass_factories(),
)
