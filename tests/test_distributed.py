"""Training on two processes under `accelerate launch` (gloo, on this CPU) against one process with the same global
batch: tests/distributed_run.py runs both ways, and the runs must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import free_port

from mtst.distributed import SINGLE, Distributed

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "distributed_run.py"
LOSS_TOLERANCE = 1e-5  # absolute, per step: the same sums added in another order (two processes' halves, then their mean)


def _run(cmd: list[str], out: Path) -> None:
    env = {**os.environ, "MTST_RUN_CACHE": "0", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd + [str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(one process, [rank 0, rank 1] of two processes, the two-process output folder)."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    _run([sys.executable, str(SCRIPT)], one)
    accelerate = str(Path(sys.executable).parent / "accelerate")
    _run([accelerate, "launch", "--config_file", str(ROOT / "docs" / "accelerate" / "cpu_2_processes.yaml"),
          "--main_process_port", str(free_port()), str(SCRIPT)], two)
    load = lambda p: json.loads(p.read_text())  # noqa: E731
    return load(one / "rank0.json"), [load(two / "rank0.json"), load(two / "rank1.json")], two


def test_two_processes_ran(runs):
    single, ranks, _ = runs
    assert single["num_processes"] == 1 and [r["num_processes"] for r in ranks] == [2, 2] and [r["rank"] for r in ranks] == [0, 1]


def test_every_step_has_the_loss_of_one_process_with_the_whole_batch(runs):
    single, ranks, _ = runs
    for key in ("losses", "pcgrad_losses", "unfreezing_losses", "cached_losses"):
        for r in ranks:
            assert len(r[key]) == len(single[key])
            np.testing.assert_allclose(r[key], single[key], rtol=0, atol=LOSS_TOLERANCE, err_msg=key)


def test_validation_and_test_scores_count_every_example_once(runs):
    single, ranks, _ = runs
    for r in ranks:
        assert r["validation"] == single["validation"] and r["cached_validation"] == single["cached_validation"]
        assert r["test_scores"] == single["test_scores"]


def test_gradual_unfreezing_uncertainty_weights_and_the_monitor_see_the_whole_batch(runs):
    single, ranks, _ = runs
    assert single["unfreezing_log"] and all(r["unfreezing_log"] == single["unfreezing_log"] for r in ranks)
    for r in ranks:
        np.testing.assert_allclose(r["unfreezing_weights"], single["unfreezing_weights"], rtol=0, atol=LOSS_TOLERANCE)
        np.testing.assert_allclose(r["grad_norms"], single["grad_norms"], rtol=1e-4, atol=1e-6)
    assert ranks[0]["unfreezing_trained"] == ranks[1]["unfreezing_trained"]


def test_both_processes_hold_the_same_weights_and_the_frozen_ones_never_move(runs):
    _, (r0, r1), _ = runs
    assert r0["trained"] == r1["trained"] and r0["pcgrad_trained"] == r1["pcgrad_trained"]
    assert r0["frozen_before"] == r0["frozen_after"] == r1["frozen_before"] == r1["frozen_after"]


def test_one_checkpoint_is_written_and_reloads_to_the_same_logits(runs):
    import mtst

    sys.path.insert(0, str(SCRIPT.parent))
    from distributed_run import probe_logits

    _, (r0, r1), out = runs
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint", "rank0.json", "rank1.json"]  # no second copy, no leftovers
    model = mtst.MultiTaskModel.from_pretrained(out / "checkpoint")
    test = {t: mtst.load_task(t, "test", "ci").subset(40) for t in mtst.TASKS}
    reloaded = probe_logits(model, test)
    for t in test:
        np.testing.assert_allclose(reloaded[t], r0["probe_logits"][t], rtol=0, atol=1e-5, err_msg=t)
        np.testing.assert_array_equal(r0["probe_logits"][t], r1["probe_logits"][t])


def test_a_global_batch_that_does_not_divide_is_refused_with_the_fix(runs):
    single, (r0, r1), _ = runs
    assert single["odd_batch"] == "accepted"
    for r in (r0, r1):
        assert r["odd_batch"].startswith("batch_size 7 is the global batch and must divide among the 2 processes")
        assert "use a multiple of 2, e.g. 6" in r["odd_batch"]


@pytest.mark.parametrize("name,processes,machines", [("one_machine_4_gpus", 4, 1), ("two_machines_8_gpus", 8, 2),
                                                     ("cpu_2_processes", 2, 1)])
def test_the_documented_launch_configs_load(name, processes, machines):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ROOT / "docs" / "accelerate" / f"{name}.yaml"))
    assert (cfg.num_processes, cfg.num_machines, cfg.mixed_precision) == (processes, machines, "no")


def test_one_process_is_a_no_op():
    assert not SINGLE.active and SINGLE.is_main and SINGLE.share([3, 1, 2]) == [3, 1, 2]
    SINGLE.check_batch(7)


def test_a_process_takes_a_contiguous_near_equal_share():
    shares = [Distributed(SimpleNamespace(num_processes=3, process_index=r)).share(list(range(8))) for r in range(3)]
    assert shares == [[0, 1], [2, 3, 4], [5, 6, 7]]
    short = [Distributed(SimpleNamespace(num_processes=3, process_index=r)).share([9, 8]) for r in range(3)]
    assert sorted(i for s in short for i in s) == [8, 9] and [] in short
