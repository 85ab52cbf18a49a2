"""Attributes as text, printed once: keys built from IR text (kernel identities,
expression signatures) print the same few types, maps and properties thousands of times
while lowering a model, at 20-100 us each through xDSL's printer.

    attribute_text(MemRefType(f32, [4, 8]))   # "memref<4x8xf32>"
"""

from __future__ import annotations

import io

from xdsl.ir import Attribute
from xdsl.printer import Printer

__all__ = ["attribute_text"]

#: printed attributes, kept up to `_MAX_TEXTS` of them (then forgotten at once)
_TEXTS: dict[Attribute, str] = {}
_MAX_TEXTS = 1 << 16
#: longer texts (large dense constants) are not kept
_MAX_KEPT_LENGTH = 512


def attribute_text(attr: Attribute) -> str:
    """`attr` as xDSL prints it (`str(attr)`), printed once per equal attribute in this
    process unless its text is long."""
    text = _TEXTS.get(attr)
    if text is None:
        out = io.StringIO()
        Printer(out).print_attribute(attr)
        text = out.getvalue()
        if len(text) <= _MAX_KEPT_LENGTH:
            if len(_TEXTS) >= _MAX_TEXTS:
                _TEXTS.clear()
            _TEXTS[attr] = text
    return text
