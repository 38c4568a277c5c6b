"""The machinery behind the measured numbers: experiments (`make results`), the results files and their provenance,
the tables made from them, and benchmarks. The teaching library (`mtst`) never imports it; it imports `mtst`.

    python -m mtst.lab.results --size full --experiments freezing --seeds 0 1 2
    python -m mtst.lab.bench encode
    python -m mtst.lab.docs
"""

import importlib

MODULES = ("bench", "bench_scale", "bench_training", "docs", "experiments", "kept", "provenance", "results", "site", "speed_tables", "store",
           "tables", "timing", "verdicts")


def __getattr__(name: str):
    # `mtst.lab.tables` after a plain `import mtst.lab`: submodules load on first use.
    if name in MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mtst.lab' has no attribute {name!r}")
