"""Write the part of Designsystemet's CSS our pages use: its base, and the components named.

Designsystemet's index.css holds every component (147 KB): parsing what no page uses
costs a phone's CPU time before the first paint. The file is a row of top-level
``@layer ds.base{…}`` and ``@layer ds.components{…}`` blocks, one or more a component;
this keeps the layer order line, every base block, and the component blocks whose first
rule names one of ours, byte for byte as published. Used by `make designsystemet`.

    python scripts/designsystemet_subset.py INDEX_CSS OUT_CSS component …
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

LAYER_ORDER = re.compile(r"@layer [\w.]+(?:, ?[\w.]+)*;")
BLOCK_START = re.compile(r"@layer (ds\.\w+)\{")
FIRST_CLASS = re.compile(r"\.ds-([a-z-]+)")


def top_level_blocks(css: str) -> list[tuple[str, str]]:
    """(layer, text) of each top-level ``@layer name{…}`` block, in order."""
    blocks = []
    position = 0
    while True:
        start = BLOCK_START.search(css, position)
        if start is None:
            return blocks
        depth, index = 0, start.end() - 1
        while True:
            char = css[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    break
            index += 1
        blocks.append((start.group(1), css[start.start() : index + 1]))
        position = index + 1


def subset(css: str, components: set[str]) -> str:
    """The layer order, every base block, and the blocks of these components."""
    order = LAYER_ORDER.match(css)
    kept = [order.group(0)] if order else []
    for layer, text in top_level_blocks(css):
        body = text[text.index("{") + 1 :]
        first = FIRST_CLASS.search(body)
        name = first.group(1) if first else ""
        if layer == "ds.base" or name in components:
            kept.append(text)
    return "".join(kept)


def main(argv: list[str]) -> None:
    source, target, *components = argv
    css = Path(source).read_text(encoding="utf-8")
    Path(target).write_text(subset(css, set(components)), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
