"""The notebooks' slide marks (mtst.lab.slides): made from each notebook's structure, written with its navigation cell
and checked by `python -m mtst.lab.docs --check`. The slide view itself is driven in Chromium (tests/e2e/test_slides_browser.py)."""

import json

from mtst.lab import nav, slides


def _md(text, **meta):
    return {"cell_type": "markdown", "metadata": meta, "source": [text]}


def _code(text):
    return {"cell_type": "code", "metadata": {}, "source": [text], "outputs": [], "execution_count": None}


def test_sections_start_slides_and_explanations_after_code_start_subslides():
    nb = {"metadata": {}, "cells": [_md("# Title\nhook"), _md("nav", tags=["mtst-nav"]), _code("size = None"), _md("## 1 · A section"),
                                     _md("more words, still the same slide"), _code("x = 1"), _md("**Why.** after code"), _code("y"),
                                     _md("### A sub-section"), _md("its words")]}
    slides.mark(nb, "mtst-nav")
    assert [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]] == ["slide", "skip", "-", "slide", "-", "-", "subslide", "-",
                                                                           "subslide", "-"]
    assert nb["metadata"]["rise"]["theme"] == "white" and nb["metadata"]["rise"]["scroll"] is True


def test_every_notebook_is_marked_as_rendered():
    for path in nav.paths():
        nb = json.loads(path.read_text())
        kinds = [c["metadata"].get("slideshow", {}).get("slide_type") for c in nb["cells"]]
        assert None not in kinds and kinds[0] == "slide", f"{path.name}: run `python -m mtst.lab.docs` to mark its slides"
        sections = sum(c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## ") for c in nb["cells"])
        assert kinds.count("slide") == sections + 1, path.name  # the title, then one per section
        assert json.loads(nav.render_notebook(path)) == nb
