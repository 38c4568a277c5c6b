"""python -m mtst demo: the brief's demonstration in a terminal (see mtst.demo)."""

import argparse
import sys

from . import demo


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mtst", description="mtst: multi-task sentence transformers, measured")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="every component once, in about a minute on a CPU")
    d.add_argument("--steps", type=int, default=20, help="training steps in the last section")
    args = p.parse_args(argv)
    return demo.main(steps=args.steps)


if __name__ == "__main__":
    sys.exit(main())
