#!/usr/bin/env bash
# Go on with the three-seed CPU grid of layerwise_lr (issue #6) where the runs in results/kept/cpu-bf16-full stop.
#   usage: tools/cpu_grid.sh            (in the foreground; `setsid nohup tools/cpu_grid.sh >> grid.log 2>&1 &` for
#                                        the background; GRID_DRY_RUN=1 prints the commands instead of running them)
# A session's machine keeps nothing outside the repository, so each run is committed as soon as it is kept: one run
# at a time, then the run dated (tools/date_kept_runs.py), the README table re-rendered from the kept runs, and both
# committed on the checkout's current branch (`git commit -- <run> README.md`: keep other README edits committed
# while the grid goes on, or they are swept into that commit).
# A resumed grid must be one commit: the code runs from a git worktree at the commit the kept runs name (GRID_COMMIT
# before the first run), so main can move on meanwhile. mtst.results refuses kept runs of another commit, recipe or
# machine. When all 27 are in, a last call writes kept/cpu-bf16-full/out/layerwise_lr.csv from them, for
#   python -m mtst.results --experiments layerwise_lr --merge results/kept/cpu-bf16-full/out --tag cpu-bf16-full
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kept=$root/results/kept/cpu-bf16-full
py=$root/.venv/bin/python
test -x "$py" || { echo "no $py: run make test or make lab once to set it up" >&2; exit 1; }
first=$(ls "$kept"/layerwise_lr.seed*.json 2>/dev/null | head -1 || true)
commit=${GRID_COMMIT:-$(test -n "$first" && "$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["stamp"]["commit"])' "$first")}
test -n "$commit" || { echo "no kept run names a commit: set GRID_COMMIT to the commit the grid should run" >&2; exit 1; }
tree=${GRID_WORKTREE:-/tmp/mtst-grid-$commit}
test -d "$tree" || git -C "$root" worktree add --detach "$tree" "$commit"
test "$(git -C "$tree" rev-parse --short HEAD)" = "$commit" || { echo "$tree is not at $commit" >&2; exit 1; }
cd "$tree"
export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
notes="1 epoch over the full training data instead of the recipe's 4, bf16 autocast, on a 2-core CPU; one run at a time, kept in results/kept/cpu-bf16-full as it finished and resumed across sessions"
grid=("$py" -m mtst.results --size full --experiments layerwise_lr --epochs 1 --precision bf16 --no-progress --resume "$kept" --notes "$notes")
run() { if [ -n "${GRID_DRY_RUN:-}" ]; then printf '%q ' "$@"; echo; else "$@"; fi; }
mapfile -t units < <("$py" -c 'from mtst.experiments import UNITS; print("\n".join(UNITS["layerwise_lr"]))')
for seed in 0 1 2; do
  for unit in "${units[@]}"; do
    name=$("$py" -c 'import re, sys; print(re.sub(r"[^A-Za-z0-9_.@+-]", "_", sys.argv[1]))' "$unit")  # as mtst.kept.Resume names it
    file=$kept/layerwise_lr.seed$seed.$name.json
    test -e "$file" && continue
    run "${grid[@]}" --seeds "$seed" --units "$unit"
    test -e "$file" || continue  # a dry run
    (cd "$root" && "$py" tools/date_kept_runs.py "$file" && "$py" -m mtst.results --readme \
      && git add "$file" && git commit -q -m "results/kept/cpu-bf16-full: seed $seed $unit" -- "$file" README.md)
  done
done
run "${grid[@]}" --seeds 0 1 2 --out "$kept/out"  # every run kept: writes the grid's results file from them, runs nothing
