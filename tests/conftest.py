import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def encoder():
    """The packaged all-MiniLM-L6-v2, loaded once for the whole test session."""
    import mtst

    return mtst.SentenceEncoder.from_pretrained()
