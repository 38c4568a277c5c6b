"""Each notebook as slides (JupyterLab's RISE: the "Render as slides" button, or /rise/<notebook> on the server). The
cells' `slideshow` metadata is set here, from the notebook's own structure, so it never drifts: the title and each
`## ` section start a slide, a `### ` heading or a markdown cell after code starts a sub-slide (the next step of the
section, below it), the navigation cell is skipped, the rest continues the slide it is on. `python -m mtst.lab.docs`
writes it with the navigation cell, and `--check` fails while a notebook's differs.
"""

from __future__ import annotations

# RISE's settings for the suite: long slides scroll (a figure and its code on one slide) rather than being cut; the
# "white" theme, whose fonts ship with RISE (its default theme asks Google's font server for two fonts, and a class
# may be offline).
RISE = {"scroll": True, "transition": "none", "start_slideshow_at": "beginning", "theme": "white"}


def slide_type(cell: dict, previous: dict | None, skip_tag: str) -> str:
    """The slide type a cell gets, from its kind, its first line and the cell before it."""
    if skip_tag in cell.get("metadata", {}).get("tags", []):
        return "skip"
    if cell["cell_type"] != "markdown":
        return "-"
    first = "".join(cell["source"]).lstrip().split("\n", 1)[0]
    if previous is None or first.startswith(("# ", "## ")):
        return "slide"
    return "subslide" if first.startswith("### ") or previous["cell_type"] == "code" else "-"


def mark(nb: dict, skip_tag: str) -> dict:
    """The notebook with every cell's slide type set and RISE's settings in its metadata."""
    previous = None
    for cell in nb["cells"]:
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": slide_type(cell, previous, skip_tag)}
        if cell["metadata"]["slideshow"]["slide_type"] != "skip":
            previous = cell
    nb["metadata"]["rise"] = dict(RISE)
    return nb
