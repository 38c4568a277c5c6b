import copy
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MTST_RUN_CACHE", "0")  # tests train what they test; tests of the run cache pass their own


@pytest.fixture(scope="session")
def encoder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole test session."""
    import mtst

    return mtst.SentenceEncoder.from_pretrained()


@pytest.fixture()
def model_for(encoder):
    """A fresh MultiTaskModel for the given tasks on a copy of the encoder, cut to short inputs for speed."""
    import mtst

    def make(data: dict, max_length: int = 32):
        enc = copy.deepcopy(encoder)
        enc.max_length = max_length
        return mtst.MultiTaskModel.for_tasks(enc, data, seed=0)

    return make


@pytest.fixture(scope="module")
def data():
    """24 training examples of each task at size ci: enough for a few steps of every kind of run."""
    import mtst

    return {t: mtst.load_task(t, "train", "ci").subset(24) for t in mtst.TASKS}


@pytest.fixture(scope="module")
def small_encoder(encoder):
    """A copy of the packaged encoder cut to 32 word pieces, for fast runs."""
    enc = copy.deepcopy(encoder)
    enc.max_length = 32
    return enc
