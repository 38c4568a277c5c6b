"""Give each run in a kept folder the date it was kept, from the file's modification time, where the run does not
record one: runs kept by code older than mtst.kept's date field (the #6 CPU grid runs at e1fb15e). Run it on a
kept run as soon as it is written, before a copy or a clone resets the time.
    usage: python tools/date_kept_runs.py results/kept/cpu-bf16-full/*.json"""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

for path in map(Path, sys.argv[1:]):
    run = json.loads(path.read_text())
    if run.get("date"):
        continue
    when = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    keys = list(run)
    run["date"] = when
    order = keys[: keys.index("wall_time_s") + 1] + ["date"] + keys[keys.index("wall_time_s") + 1:]
    path.write_text(json.dumps({k: run[k] for k in order}))
    print(f"{path.name}: kept {when}")
