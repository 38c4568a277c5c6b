"""The notebooks as `make notebooks` (size ci) or `make demo` left them in build/executed/<size>: each holds its
figures as images, and none printed as text (which is what a non-inline backend leaves behind).

Run by those make targets after the notebooks ran (MTST_EXECUTED names the folder); not part of `make unit`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.executed

ROOT = Path(__file__).resolve().parents[1]
# Figures each notebook draws at any size: plots, heatmaps and reports; a widget's redraws come on top when it is used.
MIN_FIGURES = {
    "00_data_tour.ipynb": 2,
    "01_sentence_encoder.ipynb": 2,
    "02_multitask_heads.ipynb": 3,
    "03_freezing_scenarios.ipynb": 5,
    "04_layerwise_lr.ipynb": 4,
    "05_gradient_diagnostics.ipynb": 5,
}
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def _folder() -> Path:
    folder = ROOT / os.environ.get("MTST_EXECUTED", "build/executed/ci")
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing: `make notebooks` executes the notebooks there and then runs these tests")
    return folder


def _outputs(name: str) -> list[dict]:
    path = _folder() / name
    assert path.exists(), f"{path} is missing: the notebook did not run (see `make notebooks`)"
    nb = json.loads(path.read_text())
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def test_every_notebook_has_an_expected_figure_count():
    assert sorted(MIN_FIGURES) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shows_its_figures_as_images(name):
    outputs = _outputs(name)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    as_text = [t for o in outputs if "image/png" not in o.get("data", {})
               for t in ["".join(o.get("data", {}).get("text/plain", ""))] if t.startswith("<Figure size")]
    assert not as_text, f"{name}: {len(as_text)} figure(s) printed as text, not drawn: {as_text[:2]}"
    assert len(images) >= MIN_FIGURES[name], f"{name}: {len(images)} figures as images, expected at least {MIN_FIGURES[name]}"
    assert all(len(o["data"]["image/png"]) > 1000 for o in images), f"{name}: an image output is empty"
