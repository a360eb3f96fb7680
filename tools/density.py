"""How dense each notebook reads: cells, the longest and the median markdown cell in words, the
longest code cell in lines (the figures the teaching issues report before and after a change).

    python tools/density.py notebooks/*.ipynb
"""

import json
import re
import statistics
import sys


def density(path):
    cells = json.load(open(path, encoding="utf-8"))["cells"]
    words = [len(re.findall(r"\w+", "".join(c["source"]))) for c in cells if c["cell_type"] == "markdown"]
    lines = [len("".join(c["source"]).splitlines()) for c in cells if c["cell_type"] == "code"]
    return {"cells": len(cells), "markdown_max_words": max(words, default=0),
            "markdown_median_words": statistics.median(words) if words else 0, "code_max_lines": max(lines, default=0)}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path.rsplit("/", 1)[-1], density(path))
