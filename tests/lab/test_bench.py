"""The benchmarks compare like with like: the contenders compute the same thing."""

from pathlib import Path

import pytest

from mtst.lab import bench, bench_training, provenance, speed_tables, store


def test_the_poolings_benchmark_compares_equal_embeddings():
    r = bench.bench_poolings(n=24, batch_size=8, repeats=1, device="cpu")
    assert r["sentences"] == 24 and r["modes"] == ["mean", "cls", "max"]
    assert r["max_abs_diff"] == 0.0  # the same batches, the same token vectors, pooled alike
    assert r["ratio_per_mode_over_one_pass"] > 0 and r["commit"] and r["hardware"]["cpu"]


def test_the_commit_is_dirty_for_changed_code_but_not_for_written_results(tmp_path, monkeypatch):
    import subprocess

    from mtst.lab.provenance import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.email=ci@mtst", "-c", "user.name=ci", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "run.csv").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    monkeypatch.delenv("MTST_COMMIT", raising=False)
    head = git_commit(tmp_path)
    assert head and not head.endswith("-dirty")
    (tmp_path / "results" / "run.csv").write_text("b\n")  # what an earlier run in this checkout wrote
    assert git_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == head + "-dirty"


def test_the_commit_is_read_from_the_package_checkout_not_the_current_folder(tmp_path, monkeypatch):
    import subprocess

    import pytest

    from mtst.lab.provenance import git_commit

    monkeypatch.delenv("MTST_COMMIT", raising=False)
    here = git_commit()
    monkeypatch.chdir(tmp_path)  # a run launched from outside any checkout, with the package on PYTHONPATH
    assert git_commit() == here
    if here != "unknown":
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(provenance.__file__).parent).stdout.strip()
        assert here.removesuffix("-dirty") == sha
    with pytest.warns(UserWarning, match="MTST_COMMIT=<sha>"):
        assert git_commit(tmp_path) == "unknown"


def test_a_date_span_is_one_day_or_the_first_to_the_last_day():
    assert provenance.date_span(["2026-12-04T11:21:00+00:00", "2026-12-04T09:00:00+00:00"]) == "2026-12-04"
    assert provenance.date_span(["2026-12-04T11:21:00+00:00", "2026-12-03", "2026-12-04"]) == "2026-12-03 to 2026-12-04"
    assert provenance.date_span(iter([])) == ""


def test_cpu_bf16_flags_are_read_from_cpuinfo_and_shown_in_the_benchmark_table(tmp_path, monkeypatch):
    import json


    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert provenance.cpu_bf16_flags(info) == ["avx512_bf16"]
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_vnni\n")
    assert provenance.cpu_bf16_flags(info) == []
    assert provenance.cpu_bf16_flags(tmp_path / "missing") == []

    row = {"benchmark": "encode", "device": "cpu", "sentences": 10, "batch_size": 2,
           "sentences_per_s": {"st_fp32": 1.0, "mtst_fp32": 1.2, "mtst_bf16": 1.9},
           "ratio_mtst_fp32_over_st_fp32": 1.2, "ratio_mtst_bf16_over_st_fp32": 1.9, "max_abs_diff_fp32_vs_st": 2e-7,
           "min_cosine_bf16_vs_fp32": 0.9999, "commit": "abc1234", "date": "2026-11-28T00:00:00+00:00",
           "hardware": {"cpu": "AMD EPYC", "cpu_threads": 2, "torch": "2.13.0+cpu"}}
    monkeypatch.setattr(store, "RESULTS_DIR", tmp_path)
    for name, flags in (("bench_encode_a.json", ["avx512_bf16"]), ("bench_encode_b.json", [])):
        (tmp_path / name).write_text(json.dumps({**row, "cpu_bf16_flags": flags}))
    table = speed_tables.table_benchmarks()
    assert "| AMD EPYC, 2 threads, avx512_bf16 |" in table and "| AMD EPYC, 2 threads, no bf16 flag |" in table


def test_the_monitor_benchmark_times_training_that_the_monitor_does_not_change():
    r = bench_training.bench_monitor(batch_size=4, repeats=2, device="cpu")
    assert r["records"] > 0  # the monitored contender recorded its steps
    assert r["max_abs_weight_diff_vs_plain"] == 0.0  # it only reads: same dropout masks, same updates, same weights
    assert r["ratio_monitored_over_plain"] > 0


def test_the_optim_benchmark_compares_one_group_with_the_layerwise_groups():
    r = bench_training.bench_optim(batch_size=4, repeats=1, device="cpu")
    assert r["groups"]["one_group"] == 1 and r["groups"]["layerwise"] > 8  # embeddings, 6 layers, heads; decay split
    assert r["ratio_layerwise_over_one_group"] > 0


def test_a_device_the_machine_lacks_is_refused_before_any_model_loads(capsys, monkeypatch):
    monkeypatch.setattr(bench, "_benchmarks", lambda: pytest.fail("looked up a benchmark with a bad device"))
    with pytest.raises(SystemExit) as exit_:
        bench.main(["optim", "--device", "tpu"])
    assert exit_.value.code == 2 and "unknown device 'tpu'; valid options: cpu, cuda" in capsys.readouterr().err
