"""What several test modules share besides fixtures (tests/conftest.py holds those)."""


def short_config(**kw):
    """A run of 6 steps of 8 on the CPU, without a progress bar; keyword arguments change it."""
    import mtst

    return mtst.TrainConfig(**{"steps": 6, "batch_size": 8, "lr": 1e-4, "head_lr": 1e-2, "progress": False, "device": "cpu", **kw})
