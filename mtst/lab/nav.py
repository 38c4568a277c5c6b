"""The navigation cell at the top of each notebook: where it sits in the suite (previous and next), its sections,
how long it runs at the default size (from results/notebooks_cpu_demo.json) and what it needs from earlier
notebooks. Made here, so that it never drifts; `python -m mtst.lab.docs` writes it and `--check` fails while a
notebook's differs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import slides, store
from .speed_tables import NOTEBOOKS

TAG = "mtst-nav"

NEEDS = {  # what a notebook takes from earlier ones; opened alone it computes the same itself, only slower
    "00": "nothing: it only reads the data.",
    "01": "nothing: the pretrained encoder and the data.",
    "02": "nothing; its multi-task run goes into the run cache for 03-05 (for the same `encoder`).",
    "03": "notebook 02's fine-tuning run (full fine-tuning in the grid is that run, from the run cache); opened alone, "
          "it trains that run itself.",
    "04": "notebook 02's fine-tuning run (its decay scheme is that run, from the run cache); opened alone, it trains it itself.",
    "05": "notebook 02's fine-tuning run and its monitors (from the run cache); opened alone, it trains that run itself.",
}


def _title(path: Path) -> str:
    first = json.loads(path.read_text())["cells"][0]
    return "".join(first["source"]).splitlines()[0].lstrip("# ").strip()


def _sections(nb: dict) -> list[str]:
    return [line[3:].strip() for c in nb["cells"] if c["cell_type"] == "markdown" and TAG not in c.get("metadata", {}).get("tags", [])
            for line in "".join(c["source"]).splitlines() if line.startswith("## ")]


def _anchor(heading: str) -> str:
    """JupyterLab's anchor for a heading: its text with spaces as dashes."""
    return "#" + re.sub(r"\s+", "-", heading.strip())


def nav_text(name: str, root: Path = store.ROOT) -> str:
    """The navigation cell's markdown for notebook `name`."""
    names = list(NOTEBOOKS)
    i = names.index(name)
    nb = json.loads((root / "notebooks" / name).read_text())
    prev = f"[← {_title(root / 'notebooks' / names[i - 1])}]({names[i - 1]})" if i else "the first notebook"
    nxt = f"[{_title(root / 'notebooks' / names[i + 1])} →]({names[i + 1]})" if i + 1 < len(names) else "the last notebook"
    lines = [f"**Notebook {i + 1} of {len(names)}** · {prev} · {nxt}", ""]
    try:
        demo = store.read_json(store.RESULTS_DIR / "notebooks_cpu_demo.json")
        timed = {n["notebook"]: n for n in demo["notebooks"]}.get(name)
    except FileNotFoundError:
        timed = None
    if timed is not None:
        hw = demo["hardware"]
        alone = f"; opened alone from an empty run cache, {timed['alone_s']:,.0f} s" if timed.get("alone_s") is not None else \
            "; opened alone from an empty run cache: not measured yet"
        lines.append(f"**Run time** at the default size on {hw['cpu']} ({hw['cpu_threads']} threads): {timed['wall_time_s']:,.0f} s "
                     f"cold in suite order (00 to 05 from an empty run cache), {timed.get('warm_s', float('nan')):,.0f} s warm{alone} "
                     f"(`results/notebooks_cpu_demo.json`, commit `{timed.get('commit', demo['commit'])}`; `make warm` prepares a class).")
    else:
        lines.append("**Run time** at the default size: not measured yet.")
    lines += ["", f"**Needs** {NEEDS[name[:2]]}", "", "**Contents:** " + " · ".join(f"[{s}](<{_anchor(s)}>)" for s in _sections(nb))]
    return "\n".join(lines)


def render_notebook(path: Path, root: Path = store.ROOT) -> str:
    """The notebook's JSON text with its navigation cell (second, after the title) made anew, and its slides marked
    (mtst.lab.slides)."""
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if TAG not in c.get("metadata", {}).get("tags", [])]
    cell = {"cell_type": "markdown", "id": "mtst-nav", "metadata": {"tags": [TAG]}, "source": nav_text(path.name, root).splitlines(keepends=True)}
    nb["cells"] = cells[:1] + [cell] + cells[1:]
    slides.mark(nb, TAG)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def paths(root: Path = store.ROOT) -> list[Path]:
    return [root / "notebooks" / name for name in NOTEBOOKS if (root / "notebooks" / name).exists()]
