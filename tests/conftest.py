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
