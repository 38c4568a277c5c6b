"""The benchmarks compare like with like: the contenders compute the same thing."""

from mtst import bench


def test_the_poolings_benchmark_compares_equal_embeddings():
    r = bench.bench_poolings(n=24, batch_size=8, repeats=1, device="cpu")
    assert r["sentences"] == 24 and r["modes"] == ["mean", "cls", "max"]
    assert r["max_abs_diff"] == 0.0  # the same batches, the same token vectors, pooled alike
    assert r["ratio_per_mode_over_one_pass"] > 0 and r["commit"] and r["hardware"]["cpu"]
