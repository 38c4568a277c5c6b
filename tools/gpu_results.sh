#!/usr/bin/env bash
# Run the benchmarks, the notebook suite and `make results` on an offline GPU machine that has torch, transformers and
# sentence-transformers but not mtst's model and data: tools/offline_bundle.py carries those (and .whl/ the notebook
# packages, installed to EXTRA_SITE beforehand).
#   usage: MTST_COMMIT=<sha> OUT=<dir> [BENCHES="encode heads optim monitor cache"] [NOTEBOOKS=ci] [EXTRA_SITE=/tmp/site]
#          [EXPERIMENTS="freezing layerwise_lr ..."] [SEEDS="0 1 2"] [EPOCHS=1] [JOBS=3] [PRECISION_SEEDS="0 1 2"]
#          [BUDGET_S=540] [RESUME=1] bash tools/gpu_results.sh PARTDIR...
# Everything lands in /tmp/mtst-results and is tarred to $OUT/results.tar every 20 s (a device call returns at most
# 8 files). With BUDGET_S the experiments get what is left of it after the notebooks, and write what finished. With
# RESUME=1 each finished (seed, unit) run is also kept in /tmp/mtst-results/kept (--resume), so a call stopped by its
# time limit still brings back every run that finished.
set -uo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
start=$SECONDS
python3 tools/offline_bundle.py unpack /tmp/mtst-site "$@" || exit 1
export PYTHONPATH=/tmp/mtst-site:${EXTRA_SITE:+$EXTRA_SITE:}$PWD
nvidia-smi -L
versions=$(python3 -c "import torch, transformers, sentence_transformers as st; print(f'torch {torch.__version__.split(\"+\")[0]}, transformers {transformers.__version__}, sentence-transformers {st.__version__}')")
echo "$versions"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())")
res=/tmp/mtst-results
mkdir -p "$res"
snapshot() { tar -C "$res" -cf "$OUT/results.tar.part" . && mv "$OUT/results.tar.part" "$OUT/results.tar"; }
(while sleep 20; do snapshot; done) &
ticker=$!
for b in ${BENCHES-}; do
  case $b in
    # The library defaults, as users run it: the Rust tokenizer's own parallelism on, torch's CPU threads unpinned.
    encode) env -u TOKENIZERS_PARALLELISM -u OMP_NUM_THREADS python3 -m mtst.lab.bench encode --device cuda --n 12752 --batch-size 256 --repeats 3 --json "$res/bench_encode_$gpu.json" ;;
    cache) python3 -m mtst.lab.bench cache --device cuda --size full --json "$res/bench_cache_$gpu.json" ;;
    *) python3 -m mtst.lab.bench "$b" --device cuda --repeats 20 --json "$res/bench_${b}_$gpu.json" ;;
  esac
done
if [ -n "${NOTEBOOKS-}" ]; then
  timeout "${NOTEBOOK_TIMEOUT:-240}" python3 tools/time_notebooks.py --size "$NOTEBOOKS" --json "$res/notebooks_$gpu.json" 2>&1 | grep -v "IPKernelApp\|^ *$"
fi
left=$(( ${BUDGET_S:-100000} - (SECONDS - start) ))
notes="the lock pins torch 2.13.0, transformers 5.24.0, sentence-transformers 6.2.0; that machine had $versions; model and data carried there by tools/offline_bundle.py"
if [ -n "${PRECISION_SEEDS-}" ]; then
  python3 -m mtst.lab.results --size full --experiments precision --seeds $PRECISION_SEEDS --jobs 6 --deadline-s "$left" --out "$res" \
    --notes "the recipe's 4 epochs; 6 runs at a time in parallel processes on one GPU, beside the other experiments; $notes" &
fi
if [ -n "${EXPERIMENTS-}" ]; then
  python3 -m mtst.lab.results --size full --seeds ${SEEDS:-0 1 2} --jobs "${JOBS:-3}" ${EPOCHS:+--epochs $EPOCHS} --experiments $EXPERIMENTS \
    --deadline-s "$left" --out "$res" ${RESUME:+--resume "$res/kept"} \
    --notes "${EPOCHS:+$EPOCHS epoch(s) over the full training data instead of the recipe's 4, to fit the session's 15 min of device time; }${JOBS:-3} runs at a time in parallel processes on one GPU (per-run wall times include that sharing); $notes"
fi
# Wait for the experiments only: `wait` with no pids (none started) would wait for the ticker, which never ends.
others=$(jobs -p | grep -v "^$ticker$" || true)
[ -z "$others" ] || wait $others
kill $ticker
snapshot
echo "done in $(( SECONDS - start )) s"
