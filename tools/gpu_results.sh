#!/usr/bin/env bash
# Run the benchmarks and `make results` on an offline GPU machine that has torch, transformers and
# sentence-transformers but not mtst's model and data: tools/offline_bundle.py carries those.
#   usage: MTST_COMMIT=<sha> OUT=<dir> [BENCHES="encode heads optim monitor cache"] [EXPERIMENTS="freezing layerwise_lr ..."]
#          [SEEDS="0 1 2"] [JOBS=3] bash tools/gpu_results.sh PARTDIR...
# The experiments of notebooks 03-05 (freezing, freezing_size_sweep, head_drift, layerwise_lr, loss_weighting) are
# 6-9 runs each per seed at full size: split them over calls so each fits one device command (10 min).
set -euo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
python3 tools/offline_bundle.py unpack /tmp/mtst-site "$@"
export PYTHONPATH=/tmp/mtst-site:$PWD
nvidia-smi -L
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__, torch.cuda.get_device_name(0))"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())")
for b in ${BENCHES-encode heads}; do
  case $b in
    encode) python3 -m mtst.bench encode --device cuda --n 12752 --batch-size 256 --repeats 3 --json "$OUT/bench_encode_$gpu.json" ;;
    cache) python3 -m mtst.bench cache --device cuda --size full --json "$OUT/bench_cache_$gpu.json" ;;
    *) python3 -m mtst.bench "$b" --device cuda --repeats 20 --json "$OUT/bench_${b}_$gpu.json" ;;
  esac
done
python3 -m mtst.results --size full --seeds ${SEEDS:-0 1 2} --jobs ${JOBS:-3} ${EXPERIMENTS:+--experiments $EXPERIMENTS}
for e in ${EXPERIMENTS:-single_vs_multi}; do cp results/$e.csv results/$e.json "$OUT/"; done
