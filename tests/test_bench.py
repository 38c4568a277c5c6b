"""The benchmarks compare like with like: the contenders compute the same thing."""

from mtst import bench


def test_the_poolings_benchmark_compares_equal_embeddings():
    r = bench.bench_poolings(n=24, batch_size=8, repeats=1, device="cpu")
    assert r["sentences"] == 24 and r["modes"] == ["mean", "cls", "max"]
    assert r["max_abs_diff"] == 0.0  # the same batches, the same token vectors, pooled alike
    assert r["ratio_per_mode_over_one_pass"] > 0 and r["commit"] and r["hardware"]["cpu"]


def test_the_commit_is_dirty_for_changed_code_but_not_for_written_results(tmp_path, monkeypatch):
    import subprocess

    from mtst.bench import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.email=ci@mtst", "-c", "user.name=ci", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "run.csv").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    monkeypatch.delenv("MTST_COMMIT", raising=False)
    monkeypatch.chdir(tmp_path)
    head = git_commit()
    assert head and not head.endswith("-dirty")
    (tmp_path / "results" / "run.csv").write_text("b\n")  # what an earlier run in this checkout wrote
    assert git_commit() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit() == head + "-dirty"
