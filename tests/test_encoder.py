"""SentenceEncoder against sentence-transformers itself, pooling, export and bad input."""

import warnings
from pathlib import Path

import pytest
import torch

import mtst
from mtst.encoder import pool


@pytest.fixture(scope="module")
def sentences():
    # Real review sentences plus newsgroup posts long enough to be truncated at 256 word pieces.
    return mtst.load_task("sentiment", "test", "ci").texts[:48] + mtst.load_task("topic", "test", "ci").texts[:16]


def test_shape_of_the_packaged_model(encoder):
    assert len(encoder.layers) == 6 and encoder.embedding_dim == 384
    assert encoder.max_length == 256 and encoder.pooling == "mean"  # from the folder's ST config
    # The unused BERT pooler is not part of the module, so no parameter goes without a gradient.
    assert not any("pooler" in n for n, _ in encoder.named_parameters())


def test_parity_with_sentence_transformers(encoder, sentences):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(mtst.default_model_path()), device="cpu")
    ref = torch.from_numpy(st.encode(sentences, normalize_embeddings=True, batch_size=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = encoder.encode(sentences, normalize=True, batch_size=16)
    assert ours.dtype == torch.float32 and ours.shape == (len(sentences), 384)
    assert (ours - ref).abs().max().item() <= 1e-5


def test_encode_keeps_input_order(encoder, sentences):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = encoder.encode(sentences[:20], batch_size=4)
        b = encoder.encode(sentences[:20][::-1], batch_size=7)
    assert torch.allclose(a, b.flip(0), atol=1e-5)
    one = encoder.encode([sentences[3]])
    assert torch.allclose(one[0], a[3], atol=1e-5)


def test_mean_pooling_ignores_padding():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(tokens, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    assert torch.equal(pool(tokens, mask, "max"), torch.tensor([[3.0, 4.0]]))
    assert torch.equal(pool(tokens, mask, "cls"), torch.tensor([[1.0, 2.0]]))


def test_padding_does_not_change_an_embedding(encoder):
    short = "A quiet, moving film."
    alone = encoder.encode([short])
    beside_long = encoder.encode([short, "word " * 200], batch_size=2)
    assert torch.allclose(alone[0], beside_long[0], atol=1e-5)


def test_forward_returns_tokens_and_sentence(encoder):
    batch = encoder.tokenize(["hello world", "a longer sentence here"])
    out = encoder(batch)
    assert out["token_embeddings"].shape[:2] == batch["input_ids"].shape
    assert out["sentence_embedding"].shape == (2, 384)


def test_bf16_is_close_to_fp32(encoder, sentences):
    a = encoder.encode(sentences[:16])
    b = encoder.encode(sentences[:16], precision="bf16")
    assert b.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(a, b).min().item() >= 0.999


def test_bad_input(encoder):
    assert encoder.encode([]).shape == (0, 384)
    assert encoder.encode([""]).shape == (1, 384)
    with pytest.raises(TypeError, match=r"sentences\[1\] is NoneType"):
        encoder.encode(["ok", None])
    with pytest.raises(TypeError, match=r"sentences\[0\] is int"):
        encoder.encode([3])
    with pytest.raises(TypeError, match="list of str"):
        encoder.encode(None)
    with pytest.raises(ValueError, match="valid options: fp32, bf16"):
        encoder.encode(["x"], precision="fp8")
    with pytest.raises(ValueError, match="valid options: mean, cls, max"):
        mtst.SentenceEncoder.from_pretrained(pooling="sum")
    for bs in (0, -1, 2.5):  # 0 once crashed inside range(), -1 once returned without complaint
        with pytest.raises(ValueError, match=f"batch_size must be an int from 1 up, got {bs}"):
            encoder.encode(["x", "y"], batch_size=bs)
    for n in (0, 513):  # 0 once silently meant the folder's 256; past 512 the position embeddings end
        with pytest.raises(ValueError, match=rf"max_length \(word pieces\) must be an int from 1 to 512, got {n}"):
            mtst.SentenceEncoder(encoder.model, encoder.tokenizer, max_length=n)


def test_encode_copies_back_in_chunks_in_input_order(encoder, sentences):
    """More batches than one copy-back chunk (64): every row still lands at its input position."""
    texts = (sentences * 2)[:70]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one_by_one = encoder.encode(texts, batch_size=1)
        together = encoder.encode(texts, batch_size=70)
    assert torch.allclose(one_by_one, together, atol=1e-5)
    assert torch.equal(one_by_one[0], one_by_one[len(sentences)])  # the same text twice, the same row


def test_encode_poolings_runs_the_encoder_once_and_matches_encode_per_mode(encoder, sentences):
    from mtst.widgets import _pooling

    calls = []
    hook = encoder.model.register_forward_hook(lambda *a: calls.append(1))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            every = encoder.encode_poolings(sentences, batch_size=16, normalize=True)
    finally:
        hook.remove()
    assert list(every) == ["mean", "cls", "max"] and len(calls) == 4  # 64 sentences, batch 16: one pass per batch
    for mode, emb in every.items():
        with _pooling(encoder, mode), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.equal(emb, encoder.encode(sentences, batch_size=16, normalize=True))
    assert not torch.allclose(every["mean"], every["max"], atol=1e-2)  # the modes differ
    assert encoder.encode_poolings([], ("cls",))["cls"].shape == (0, 384)
    assert list(encoder.encode_poolings(["a b"], "max")) == ["max"]  # one mode by name
    with pytest.raises(ValueError, match="valid options: mean, cls, max"):
        encoder.encode_poolings(["x"], ("mean", "sum"))
    with pytest.raises(ValueError, match="modes is empty"):
        encoder.encode_poolings(["x"], ())


def test_threaded_tokenization_matches_one_transformers_call(encoder, sentences, monkeypatch):
    texts = (sentences * 40)[:2600]  # three chunks of at most 1024
    monkeypatch.setattr(mtst.encoder, "TOKENIZE_THREADS", 3)
    ids, cut = encoder._token_ids(texts)
    ref = encoder.tokenizer(texts, truncation=True, max_length=encoder.max_length)
    assert ids == ref["input_ids"]
    assert cut == sum(1 for e in ref.encodings if e.overflowing) > 0


def test_truncation_warns_once_with_the_count(encoder):
    with pytest.warns(UserWarning, match=r"2 of 3 texts were longer than max_length=256") as rec:
        encoder.encode(["word " * 300, "short", "word " * 400])
    assert len([w for w in rec if "truncated" in str(w.message)]) == 1


def test_truncation_warning_points_at_the_callers_line(encoder):
    # layer_representations runs under @torch.inference_mode(), whose wrapper adds a frame inside torch.
    for call in (lambda: encoder.encode(["word " * 300]), lambda: mtst.diagnostics.layer_representations(encoder, ["word " * 300])):
        with pytest.warns(UserWarning, match="truncated") as rec:
            call()
        assert {Path(w.filename).name for w in rec if "truncated" in str(w.message)} == {Path(__file__).name}


def test_not_a_model_folder(tmp_path):
    with pytest.raises(OSError, match=str(tmp_path)):
        mtst.SentenceEncoder.from_pretrained(tmp_path)


def test_uncached_hub_id_fails_fast_offline():
    with pytest.raises(OSError, match="neither a local folder nor in the Hugging Face cache.*HF_HUB_OFFLINE=1"):
        mtst.SentenceEncoder.from_pretrained("someone/not-a-cached-model")


def test_save_pretrained_loads_in_sentence_transformers(encoder, tmp_path, sentences):
    from sentence_transformers import SentenceTransformer

    enc = mtst.SentenceEncoder(encoder.model, encoder.tokenizer, pooling="max", normalize=True, max_length=128)
    out = enc.save_pretrained(tmp_path / "exported")
    st = SentenceTransformer(str(out), device="cpu")
    ours = enc.encode(sentences[:12])
    theirs = torch.from_numpy(st.encode(sentences[:12]))
    assert st.max_seq_length == 128
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert not list(tmp_path.glob(".exported.*"))  # the temporary folder was renamed, not left behind


def test_random_init_has_the_same_shape_but_new_weights(encoder):
    rnd = mtst.SentenceEncoder.random_init(like=encoder, seed=0)
    assert rnd.embedding_dim == encoder.embedding_dim and len(rnd.layers) == len(encoder.layers)
    w0 = encoder.layers[0].attention.self.query.weight
    assert not torch.equal(rnd.layers[0].attention.self.query.weight, w0)
    again = mtst.SentenceEncoder.random_init(like=encoder, seed=0)
    assert torch.equal(again.layers[0].attention.self.query.weight, rnd.layers[0].attention.self.query.weight)
