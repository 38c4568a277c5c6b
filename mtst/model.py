"""The multi-task model: one shared SentenceEncoder feeding several task heads, run once per batch."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from .data import TaskData
from .distributed import current
from .encoder import SentenceEncoder
from .files import atomic_folder

IGNORE_INDEX = -100  # label of word pieces that carry no word label (special tokens, continuation pieces)
CHECKPOINT_FORMAT = 1


class SentenceClassificationHead(nn.Module):
    """Classifies the pooled sentence embedding: dropout → (optional hidden layer) → linear."""

    kind = "sentence"

    def __init__(self, dim: int, num_labels: int, hidden: int | None = None, dropout: float = 0.1):
        super().__init__()
        self.config = {"type": "sentence", "dim": dim, "num_labels": num_labels, "hidden": hidden, "dropout": dropout}
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or dim, num_labels))
        self.net = nn.Sequential(*layers)

    def forward(self, sentence_embedding: torch.Tensor) -> torch.Tensor:
        return self.net(sentence_embedding)


class TokenClassificationHead(nn.Module):
    """Classifies every word piece's embedding; words are read off their first piece."""

    kind = "token"

    def __init__(self, dim: int, num_labels: int, dropout: float = 0.1):
        super().__init__()
        self.config = {"type": "token", "dim": dim, "num_labels": num_labels, "dropout": dropout}
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, num_labels))

    def forward(self, token_embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(token_embeddings)


def make_head(config: dict) -> nn.Module:
    cfg = dict(config)
    kind = cfg.pop("type")
    if kind == "sentence":
        return SentenceClassificationHead(**cfg)
    if kind == "token":
        return TokenClassificationHead(**cfg)
    raise ValueError(f"unknown head type {kind!r}; valid types: sentence, token")


def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Word labels → word-piece labels: each word's first piece gets its label; other pieces and specials get -100."""
    out, previous = [], None
    for w in word_ids:
        if w is None or w == previous:
            out.append(IGNORE_INDEX)
        else:
            out.append(word_labels[w])
        previous = w
    return out


class MultiTaskModel(nn.Module):
    """A shared encoder and a dict of heads; `forward` runs the encoder once and every asked head on it."""

    def __init__(self, encoder: SentenceEncoder, heads: dict[str, nn.Module], label_names: dict[str, list[str]] | None = None):
        super().__init__()
        if not heads:
            raise ValueError("a MultiTaskModel needs at least one head")
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.label_names = {t: list(label_names[t]) for t in heads} if label_names else {t: [str(i) for i in range(_num_labels(h))] for t, h in heads.items()}

    @classmethod
    def for_tasks(
        cls, encoder: SentenceEncoder, tasks: dict[str, TaskData], hidden: int | None = None, dropout: float = 0.1, seed: int = 0
    ) -> "MultiTaskModel":
        """One head per task, shaped by the task's kind and label count; heads are initialised from `seed`."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            heads = {
                name: (
                    TokenClassificationHead(encoder.embedding_dim, d.num_labels, dropout)
                    if d.kind == "token"
                    else SentenceClassificationHead(encoder.embedding_dim, d.num_labels, hidden, dropout)
                )
                for name, d in tasks.items()
            }
        return cls(encoder, heads, {name: d.label_names for name, d in tasks.items()})

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def task_kind(self, task: str) -> str:
        return self._head(task).kind

    def _head(self, task: str) -> nn.Module:
        if task not in self.heads:
            raise KeyError(f"no head for task {task!r}; the model's tasks are: {', '.join(self.heads)}")
        return self.heads[task]

    # ------------------------------------------------------------------ batches
    def tokenize(self, sentences: list[str], words: list[list[str]] | None = None):
        """Tokenize by words (whitespace, or the given word lists) so that word pieces map back to words."""
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise TypeError(f"sentences[{i}] is {type(s).__name__}, not str")
        words = words if words is not None else [s.split() for s in sentences]
        batch = self.encoder.tokenizer(
            words, is_split_into_words=True, padding=True, truncation=True, max_length=self.encoder.max_length, return_tensors="pt"
        )
        batch["word_ids"] = [batch.word_ids(i) for i in range(len(words))]
        return batch

    def forward(self, inputs, tasks: list[str] | str | None = None) -> dict[str, torch.Tensor]:
        """Sentences or a tokenized batch in → {task: logits} for the tasks asked (all when None)."""
        tasks = self.tasks if tasks is None else ([tasks] if isinstance(tasks, str) else list(tasks))
        heads = {t: self._head(t) for t in tasks}
        if isinstance(inputs, (list, tuple)):
            inputs = self.tokenize(list(inputs))
        batch = {k: v.to(self.device) for k, v in inputs.items() if isinstance(v, torch.Tensor) and k in ("input_ids", "attention_mask", "token_type_ids")}
        out = self.encoder(batch)  # the one encoder pass that every head shares
        return {t: h(out["token_embeddings"] if h.kind == "token" else out["sentence_embedding"]) for t, h in heads.items()}

    @torch.inference_mode()
    def predict(self, sentences: list[str] | str, tasks: list[str] | None = None) -> list[dict]:
        """Readable outputs per sentence: a label name per sentence task, (words, entity type) spans for token tasks."""
        single = isinstance(sentences, str)
        sentences = [sentences] if single else list(sentences)
        if not sentences:
            return []
        was_training = self.training
        self.eval()
        try:
            batch = self.tokenize(sentences)
            logits = self(batch, tasks)
        finally:
            self.train(was_training)
        results: list[dict] = [{} for _ in sentences]
        for task, lg in logits.items():
            names = self.label_names[task]
            if self.task_kind(task) == "sentence":
                for i, y in enumerate(lg.argmax(-1).tolist()):
                    results[i][task] = names[y]
            else:
                for i, s in enumerate(sentences):
                    tags = word_predictions(lg[i].argmax(-1).tolist(), batch["word_ids"][i])
                    results[i][task] = bio_spans(s.split(), [names[t] for t in tags])
        return results[0] if single else results

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, path: str | Path) -> Path:
        """Write the encoder (sentence-transformers folder), the heads (safetensors) and JSON config, atomically.
        Under `accelerate launch`, only the main process writes, and every process returns once it has."""
        from safetensors.torch import save_file

        path, dist = Path(path), current()
        if not dist.is_main:
            dist.wait()
            return path
        with atomic_folder(path) as tmp:
            self.encoder.save_pretrained(tmp / "encoder")
            state = {k: v.detach().contiguous().cpu() for k, v in self.heads.state_dict().items()}
            save_file(state, str(tmp / "heads.safetensors"))
            config = {
                "format": CHECKPOINT_FORMAT,
                "encoder": {"pooling": self.encoder.pooling, "normalize": self.encoder.normalize, "max_length": self.encoder.max_length},
                "heads": {t: h.config for t, h in self.heads.items()},
                "label_names": self.label_names,
            }
            (tmp / "mtst_config.json").write_text(json.dumps(config, indent=2))
        dist.wait()
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "MultiTaskModel":
        """Load a folder written by save_pretrained; a missing or corrupt file is named in the error."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        for rel in ("mtst_config.json", "heads.safetensors", "encoder/config.json", "encoder/model.safetensors"):
            if not (path / rel).is_file():
                raise FileNotFoundError(f"{path / rel} is missing: {path} is not a complete mtst checkpoint")
        try:
            config = json.loads((path / "mtst_config.json").read_text())
            heads_cfg, enc_cfg = config["heads"], config["encoder"]
        except (json.JSONDecodeError, KeyError) as e:
            raise ValueError(f"{path / 'mtst_config.json'} is corrupt: {e}") from None
        try:
            encoder = SentenceEncoder.from_pretrained(path / "encoder", pooling=enc_cfg["pooling"], normalize=enc_cfg["normalize"], max_length=enc_cfg["max_length"])
        except (OSError, SafetensorError, RuntimeError) as e:
            raise ValueError(f"{path / 'encoder' / 'model.safetensors'} could not be loaded: {e}") from None
        heads = {t: make_head(c) for t, c in heads_cfg.items()}
        model = cls(encoder, heads, config.get("label_names"))
        try:
            state = load_file(str(path / "heads.safetensors"))
            model.heads.load_state_dict(state)
        except (SafetensorError, RuntimeError, OSError) as e:
            raise ValueError(f"{path / 'heads.safetensors'} is corrupt or does not match mtst_config.json: {e}") from None
        return model


def _num_labels(head: nn.Module) -> int:
    return int(getattr(head, "config", {}).get("num_labels") or [m for m in head.modules() if isinstance(m, nn.Linear)][-1].out_features)


def word_predictions(piece_tags: list[int], word_ids: list[int | None]) -> list[int]:
    """Word-level tags from piece-level predictions: each word takes its first piece's tag."""
    tags: dict[int, int] = {}
    for tag, w in zip(piece_tags, word_ids):
        if w is not None and w not in tags:
            tags[w] = tag
    n = max((w for w in word_ids if w is not None), default=-1) + 1
    return [tags.get(i, 0) for i in range(n)]


def bio_spans(words: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(text, entity type) for each entity in a BIO-tagged word sequence; a stray I- starts a new entity."""
    spans: list[tuple[list[str], str]] = []
    prev = "O"
    for word, tag in zip(words, tags):
        if tag.startswith("I-") and prev != "O" and spans[-1][1] == tag[2:]:
            spans[-1][0].append(word)
        elif tag != "O":
            spans.append(([word], tag[2:]))
        prev = tag
    return [(" ".join(ws), t) for ws, t in spans]


def model_parts(model: nn.Module) -> "OrderedDict[str, list[tuple[str, nn.Parameter]]]":
    """The model's parts bottom to top: embeddings, layer_0 … layer_{L-1}, head:<task> …, other. "embeddings" holds
    every encoder weight outside its layers: the embeddings, and what some architectures share across layers (MPNet's
    relative-position bias, computed once below the first layer)."""
    encoder = model.encoder if isinstance(model, MultiTaskModel) else model
    parts: OrderedDict[str, list] = OrderedDict()
    owner: dict[int, str] = {}
    for p in encoder.model.parameters():
        owner[id(p)] = "embeddings"  # the layers' own weights are claimed next
    for i, layer in enumerate(encoder.layers):
        for p in layer.parameters():
            owner[id(p)] = f"layer_{i}"
    parts["embeddings"] = []
    for i in range(len(encoder.layers)):
        parts[f"layer_{i}"] = []
    if isinstance(model, MultiTaskModel):
        for t, h in model.heads.items():
            parts[f"head:{t}"] = []
            for p in h.parameters():
                owner[id(p)] = f"head:{t}"
    for name, p in model.named_parameters():
        part = owner.get(id(p), "other")
        parts.setdefault(part, []).append((name, p))
    return parts
