#!/usr/bin/env bash
# Run the benchmarks and `make results` on an offline GPU machine that has torch, transformers and
# sentence-transformers but not mtst's model and data: tools/offline_bundle.py carries those.
#   usage: MTST_COMMIT=<sha> OUT=<dir> bash tools/gpu_results.sh PARTDIR...
set -euo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
python3 tools/offline_bundle.py unpack /tmp/mtst-site "$@"
export PYTHONPATH=/tmp/mtst-site:$PWD
nvidia-smi -L
python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, 'transformers', transformers.__version__, 'sentence-transformers', st.__version__, torch.cuda.get_device_name(0))"
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).split()[1].lower())")
python3 -m mtst.bench encode --device cuda --n 12752 --batch-size 256 --repeats 3 --json "$OUT/bench_encode_$gpu.json"
python3 -m mtst.bench heads --device cuda --json "$OUT/bench_heads_$gpu.json"
python3 -m mtst.results --size full --seeds 0 1 2 --jobs 3 ${EXPERIMENTS:+--experiments $EXPERIMENTS}
for e in ${EXPERIMENTS:-single_vs_multi}; do cp results/$e.csv results/$e.json "$OUT/"; done
