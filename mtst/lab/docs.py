"""The generated parts of README.md and docs/: every block between `<!-- NAME:begin -->` and `<!-- NAME:end -->` is
made from the results files by the function SECTIONS names, so no number in them is typed by hand; and each
notebook's navigation cell (`mtst.lab.nav`).

    python -m mtst.lab.docs            # re-render every block in README.md and docs/*.md
    python -m mtst.lab.docs --check    # exit 1, naming the files, where a block differs from its results files
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import answers, depth, model_choice, nav, tables
from .speed_tables import table_benchmarks, table_notebook_times, table_notebooks, table_processes, table_verdicts
from .store import ROOT

SECTIONS = {
    "headline": tables.table_headline,
    "sizes": tables.table_sizes,
    "benchmarks": table_benchmarks,
    "notebook-times": table_notebook_times,
    "notebooks": table_notebooks,
    "verdicts": table_verdicts,
    "processes": table_processes,
    "single-vs-multi": tables.table_single_vs_multi,
    "recipe-sweep": tables.table_recipe_sweep,
    "recipe-sweep-cpu": lambda: tables.table_recipe_sweep("cpu"),
    "recipe-sweep-cpu-round3": lambda: tables.table_recipe_sweep("cpu-round3"),
    "tuned-recipe": tables.table_tuned_recipe,
    "tuned-recipe-cpu-bf16": lambda: tables.table_tuned_recipe("cpu-bf16"),
    "precision": tables.table_precision,
    "precision-cpu-demo": lambda: tables.table_precision("cpu-demo"),
    "freezing": tables.table_freezing,
    "freezing-size-sweep": tables.table_freezing_size_sweep,
    "freezing-size-sweep-cpu-full": lambda: tables.table_freezing_size_sweep("cpu-full"),
    "head-drift": tables.table_head_drift,
    "head-drift-cpu-full": lambda: tables.table_head_drift("cpu-full"),
    "freezing-claims": tables.table_freezing_claims,
    "layerwise-lr": tables.table_layerwise_lr,
    "layerwise-lr-claims": tables.table_layerwise_claims,
    "layerwise-lr-cpu-bf16-full": lambda: tables.table_layerwise_lr("cpu-bf16-full"),
    "layerwise-lr-claims-cpu-bf16-full": lambda: tables.table_layerwise_claims("cpu-bf16-full"),
    "loss-weighting": tables.table_loss_weighting,
    "loss-weighting-cpu-bf16-full": lambda: tables.table_loss_weighting("cpu-bf16-full"),
    "answers-freezing": answers.freezing,
    "answers-layerwise": answers.layerwise,
    "layerwise-reading": answers.layerwise_reading,
    "answers-model-choice": answers.model_choice,
    "model-choice-table": model_choice.markdown_table,
    "depth-freezing": depth.freezing_table,
    "depth-rates": depth.rates_table,
    "depth-reading": depth.reading,
}

PAGES = ("README.md", "docs/results.md", "docs/benchmarks.md", "docs/scaling.md", "docs/answers.md")  # the files whose blocks are generated


def render(text: str) -> str:
    """Replace each <!-- NAME:begin --> … <!-- NAME:end --> block with the table made from the results files."""
    for name, fn in SECTIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            try:
                body = fn()
            except FileNotFoundError:
                body = "_not measured yet_"
            text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def stale(root: Path = ROOT) -> list[Path]:
    """The pages whose generated blocks differ from what the results files give now."""
    pages = [root / p for p in PAGES if (root / p).exists() and render((root / p).read_text()) != (root / p).read_text()]
    return pages + [p for p in nav.paths(root) if nav.render_notebook(p, root) != p.read_text()]


def render_all(root: Path = ROOT) -> list[Path]:
    """Re-render every page in place; returns the pages that exist."""
    done = []
    for p in PAGES:
        path = root / p
        if path.exists():
            path.write_text(render(path.read_text()))
            done.append(path)
    for path in nav.paths(root):  # each notebook's navigation cell: previous, next, contents, run time
        path.write_text(nav.render_notebook(path, root))
        done.append(path)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst.lab.docs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only say which pages differ from the results files (exit 1 if any)")
    args = p.parse_args(argv)
    if args.check:
        differ = stale()
        for path in differ:
            print(f"{path.relative_to(ROOT)} differs from the results files: run python -m mtst.lab.docs")
        return 1 if differ else 0
    for path in render_all():
        print(f"rendered {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
