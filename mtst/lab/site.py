"""The suite as a static site that reads without a kernel: the README as its landing page, every notebook with the
outputs of a run already made (`make notebooks` at size ci, `make demo` at the default size), the docs/ pages and an
API reference from the docstrings. Sphinx with MyST-NB and the Furo theme; docs/site.md says why.

    python -m mtst.lab.site                 # the default size's run if complete and current, else ci's
    python -m mtst.lab.site --size ci       # build/site/html/index.html

It executes nothing: a notebook whose executed copy is missing, failed or older than notebooks/ is an error that
names the make target to run.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import mtst
from mtst.widgets import STATIC_MIME

from .store import ROOT

EXECUTED = ROOT / "build" / "executed"  # build/executed/<size>/NN_name.ipynb, written by `make notebooks` / `make demo`
SITE = ROOT / "build" / "site"
MAKE_TARGET = {"ci": "make notebooks", "demo": "make demo"}

# The library's modules in the order docs/architecture.md draws them, bottom to top: the API reference follows it.
API_MODULES = ("data", "encoder", "pretrained", "model", "config", "sampling", "callbacks", "features", "evaluation", "runcache", "optim",
               "weighting", "training", "freezing", "panels", "exercises", "diagnostics", "scenarios", "claims", "probes", "plotting",
               "widgets")

FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2b5d8a"/>'
           '<path d="M3 12V5h2v1q1-1 2 0 1-1 3-1 3 0 3 3v4h-2V8q0-1-1-1t-1 1v4H7V8q0-1-1-1T5 8v4z" fill="#fff"/></svg>')

CONF = '''\
# Written by mtst.lab.site; edit that module, not this file.
project = "mtst"
html_title = "mtst: multi-task sentence transformers, measured"
extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
html_theme = "furo"
html_show_sphinx = False
html_favicon = "favicon.svg"          # browsers ask for one; without it every served site logs a 404
default_role = "code"                 # `name` in a docstring reads as code, as it does in markdown
autodoc_member_order = "bysource"
autodoc_typehints = "description"
myst_heading_anchors = 3              # the docs' links to #sections resolve
nb_execution_mode = "off"             # the notebooks come executed; the site never runs them again
nb_merge_streams = True
# Widget state can only be shown with the widget manager's scripts from a CDN, and the site loads nothing from
# another host: mtst.lab.site puts the panels' own data where they were, and mtst-widgets.js (copied from
# mtst/lab/site_widgets.js) draws working controls from it; any other widget becomes a note with its last readout.
nb_ipywidgets_js = {}
html_static_path = ["_static"]
html_js_files = ["mtst-widgets.js"]
html_css_files = ["mtst-widgets.css"]
'''


CSS = """\
.mtst-site-row { display: flex; gap: 1em; align-items: flex-start; flex-wrap: wrap; }
.mtst-site-toggles label, .mtst-site-controls label { display: block; font-size: 0.85em; }
.mtst-site-controls { display: grid; grid-template-columns: repeat(2, minmax(16em, 1fr)); gap: 0.2em 1.5em; }
.mtst-site-controls input[type=range], .mtst-static > label input[type=range] { width: 10em; vertical-align: middle; }
.mtst-site-readout { font-family: var(--font-stack--monospace); font-size: 0.85em; }
.mtst-site-note { font-size: 0.85em; font-style: italic; }
.mtst-site-figure svg { max-width: 100%; height: auto; background: white; }
"""


class SiteError(RuntimeError):
    """The site cannot be built from what is on disk; the message names the command that fixes it."""


def notebook_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))


def _code_sources(nb: dict) -> list[str]:
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in nb["cells"] if c["cell_type"] == "code"]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check_executed(size: str) -> list[Path]:
    """The executed notebooks of `size`, each present, with the code of notebooks/ and every code cell run without
    an error; else SiteError naming the make target that writes them."""
    fix = f"run `{MAKE_TARGET.get(size, 'make notebooks')}` first"
    paths = []
    for name in notebook_names():
        path = EXECUTED / size / name
        if not path.exists():
            raise SiteError(f"{_shown(path)} is missing: {fix}")
        nb = json.loads(path.read_text())
        source = json.loads((ROOT / "notebooks" / name).read_text())
        if _code_sources(nb) != _code_sources(source):
            raise SiteError(f"{_shown(path)} was executed from older code than notebooks/{name}: {fix}")
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        if any(c.get("execution_count") is None for c in code):
            raise SiteError(f"{_shown(path)} has cells that never ran (an interrupted run?): {fix}")
        if any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])):
            raise SiteError(f"{_shown(path)} holds an error output: fix the notebook, then {fix}")
        paths.append(path)
    return paths


def pick_size() -> str:
    """The default size's run where it is complete and current, else ci's."""
    try:
        check_executed("demo")
        return "demo"
    except SiteError:
        return "ci"


def _public_names_by_module() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {m: [] for m in API_MODULES}
    for name in mtst.__all__:
        obj = getattr(mtst, name)
        home = getattr(obj, "__module__", None) if (inspect.isclass(obj) or inspect.isfunction(obj)) else None
        if home is None:  # a constant: the module that defines it at top level
            home = next(f"mtst.{m}" for m in API_MODULES if getattr(importlib.import_module(f"mtst.{m}"), name, None) is obj)
        found.setdefault(home.removeprefix("mtst."), []).append(name)
    return {m: names for m, names in found.items() if names}


def _holds(obj) -> str:
    keys = list(obj) if isinstance(obj, (dict, tuple, list, frozenset, set)) else None
    kind = "keys" if isinstance(obj, dict) else "values"
    return f"{type(obj).__name__}, {kind}: " + ", ".join(f"``{k}``" for k in keys) if keys else f"``{obj!r}``"


def api_page() -> str:
    """The API reference: every name in `mtst.__all__`, under the module that defines it, bottom to top."""
    out = ["# API reference", "",
           "Every public name, importable as `mtst.NAME`, under the module that defines it. The modules are in the",
           "order of [the architecture page](docs/architecture.md): each uses only those above it.", ""]
    for module, names in _public_names_by_module().items():
        doc = (inspect.getdoc(importlib.import_module(f"mtst.{module}")) or "").split("\n\n")[0]
        out += [f"## `mtst.{module}`", "", doc, "", "```{eval-rst}"]
        for name in names:
            obj = getattr(mtst, name)
            if inspect.isclass(obj):
                out += [f".. autoclass:: mtst.{name}", "   :members:", ""]
            elif inspect.isfunction(obj):
                out += [f".. autofunction:: mtst.{name}", ""]
            else:  # a constant: what it holds, not the docstring of its type
                out += [f".. py:data:: mtst.{name}", "", f"   {_holds(obj)}", ""]
        out += ["```", ""]
    return "\n".join(out)


def landing_page(readme: str, size: str) -> str:
    """The README, its notebook names made links, and the site's table of contents."""
    names = notebook_names()
    for name in names:
        readme = readme.replace(f"| `{name}` |", f"| [`{name}`](notebooks/{name}) |")
    note = (f"\n> This site shows the notebooks as they ran at size `{size}` "
            f"(`{MAKE_TARGET[size]}`); `make site` builds it again.\n")
    readme = readme.replace("## Two commands", note.lstrip("\n") + "\n## Two commands", 1)
    toc = ["", "```{toctree}", ":hidden:", ":caption: Notebooks", "", *[f"notebooks/{Path(n).stem}" for n in names], "```",
           "", "```{toctree}", ":hidden:", ":caption: Results and design", "",
           *[f"docs/{p.stem}" for p in sorted((ROOT / "docs").glob("*.md"))], "api", "```", ""]
    return readme + "\n".join(toc)


def _children(state: dict, model_id: str) -> list[dict]:
    ids = state[model_id]["state"].get("children", [])
    return [state[c.removeprefix("IPY_MODEL_")] for c in ids if c.removeprefix("IPY_MODEL_") in state]


def _labels(state: dict, model_id: str) -> list[str]:
    """The text a widget tree shows in its Label widgets, depth first (a panel's readout)."""
    model = state[model_id]
    out = [model["state"]["value"]] if model["model_name"] == "LabelModel" and model["state"].get("value") else []
    for child in model["state"].get("children", []):
        if child.removeprefix("IPY_MODEL_") in state:
            out += _labels(state, child.removeprefix("IPY_MODEL_"))
    return out


def widget_html(state: dict, model_id: str) -> str:
    """A widget's last state as static HTML: a tqdm progress bar as the bar and its text; anything else as a note
    with the readouts it showed."""
    if model_id not in state:
        return '<p class="mtst-widget-note"><em>(a widget whose state was not saved)</em></p>'
    kids = _children(state, model_id)
    if [k["model_name"] for k in kids] == ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        left, bar, right = (k["state"] for k in kids)
        return (f'<div class="mtst-progress"><code>{left.get("value", "")}</code> <progress value="{bar.get("value", 0)}" '
                f'max="{bar.get("max", 1)}"></progress> <code>{right.get("value", "")}</code></div>')
    readouts = "".join(f"<br><code>{html.escape(t)}</code>" for t in _labels(state, model_id))
    return ('<p class="mtst-widget-note"><em>An interactive widget stood here: open the notebook in JupyterLab (<code>make '
            f'lab</code>) to use it.</em>{" Its last readout:" if readouts else ""}{readouts}</p>')


def static_panel_html(data: dict, fallback: str) -> str:
    """A panel's data (mtst.widgets.STATIC_MIME) in a page, for mtst-widgets.js to draw controls from; `fallback`
    shows until the script runs (and where scripts are off)."""
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False).replace("</", "<\\/")  # nothing in the data can close the script
    return (f'<div class="mtst-static" data-kind="{html.escape(data["kind"])}"><script type="application/json">{payload}</script>'
            f'<div class="mtst-static-fallback">{fallback}</div></div>')


def without_widgets(nb: dict) -> dict:
    """The notebook with each widget output replaced: a panel that saved its data (mtst.widgets.STATIC_MIME) by the
    data, for the page's script to redraw; any other widget by static HTML of its last state. Saved state dropped."""
    state = nb["metadata"].pop("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            panel = out.get("data", {}).get(STATIC_MIME)
            if panel:
                out["data"] = {"text/html": static_panel_html(panel, widget_html(state, view["model_id"]) if view else "")}
            elif view:
                out["data"] = {"text/html": widget_html(state, view["model_id"])}
        if cell.get("id") == "mtst-nav":  # the site's sidebar lists the sections; JupyterLab's #anchors mean nothing here
            lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(keepends=True)
            cell["source"] = [line for line in lines if not line.startswith("**Contents:**")]
    return nb


def assemble(size: str, src: Path) -> Path:
    """The Sphinx source tree in `src`: conf.py, index.md (the README), docs/, notebooks/ (executed), api.md."""
    paths = check_executed(size)
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "docs", src / "docs")
    for path in paths:
        (src / "notebooks" / path.name).write_text(json.dumps(without_widgets(json.loads(path.read_text())), indent=1))
    (src / "conf.py").write_text(CONF)
    (src / "_static").mkdir()
    shutil.copy(Path(__file__).with_name("site_widgets.js"), src / "_static" / "mtst-widgets.js")
    (src / "_static" / "mtst-widgets.css").write_text(CSS)
    (src / "favicon.svg").write_text(FAVICON)
    (src / "index.md").write_text(landing_page((ROOT / "README.md").read_text(), size))
    (src / "api.md").write_text(api_page())
    return src


def build(size: str | None = None, out: Path = SITE) -> Path:
    """Assemble the sources and run Sphinx; return the site's index.html. Sphinx's warnings are errors."""
    size = size or pick_size()
    src = assemble(size, out / "src")
    html = out / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going", "-E", str(src), str(html)]
    if subprocess.run(cmd).returncode:
        raise SiteError(f"Sphinx failed (its warnings above are errors); sources in {src.relative_to(ROOT)}")
    (html / "SIZE").write_text(size + "\n")
    return html / "index.html"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mtst.lab.site", description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(MAKE_TARGET), help="whose executed notebooks (default: demo if current, else ci)")
    args = ap.parse_args(argv)
    try:
        index = build(args.size)
    except SiteError as e:
        print(f"site: {e}", file=sys.stderr)
        return 1
    print(f"site: {index.relative_to(ROOT)} (open it from disk, or `python -m http.server -d {index.parent.relative_to(ROOT)}`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
