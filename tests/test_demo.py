"""`python -m mtst demo`: the brief's demonstration in a terminal, each section one line of plain words, then its output."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_demo_shows_every_component_in_order():
    run = subprocess.run([sys.executable, "-m", "mtst", "demo", "--steps", "3"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    heads = [out.index(f"\n[{n}] ") for n in range(1, 6)]
    assert heads == sorted(heads)
    assert "cosine similarity" in out and "'topic': (2, 20)" in out and "a_feature_extractor" in out and "layer_5" in out
    assert "3 steps in" in out and "mtst demo: done in" in out
    table = out[out.index("before (%)"):].splitlines()  # each task's validation score before and after, on the same examples
    assert [line.split()[0] for line in table[1:4]] == ["sentiment", "topic", "ner"] and "change (pts)" in table[0]


def test_a_bad_command_says_what_the_commands_are():
    run = subprocess.run([sys.executable, "-m", "mtst", "train"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 2 and "invalid choice: 'train'" in run.stderr and "demo" in run.stderr
