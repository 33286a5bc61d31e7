"""Score the models a still-running (or killed) per-table benchmark has finished, from its log (dev helper).

    .venv/bin/python benchmarks/salvage.py DATASET LOG [COMMIT]
Reads the fit lines of benchmarks/out/bench-DATASET.log, scores the synthetic tables present with score.py
and writes benchmarks/out/results-DATASET.json as the driver would, so `--merge` can render it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def main() -> None:
    ds, log = sys.argv[1], Path(sys.argv[2])
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    info = lines[0]
    fits = {r["model"]: r for r in lines[1:] if "model" in r and "fit_s" in r}
    work = OUT / ds
    done = [(r, work / f"{m}.parquet") for m, r in fits.items() if (work / f"{m}.parquet").exists()]
    proc = subprocess.run([str(HERE / ".venv-sdv" / "bin" / "python"), str(HERE / "score.py"), str(work / "train.parquet"),
                           str(work / "holdout.parquet"), str(work / "metadata.json"), info["target"],
                           *[str(s) for _, s in done]], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    scores = json.loads(proc.stdout.strip().splitlines()[-1])
    info["trtr"] = scores["__real__"]["trtr"]
    results = []
    for r, syn in done:
        r.update(scores.get(str(syn), {}))
        results.append(r)
    settings = {"epochs": next((r["epochs"] for r in results if r["epochs"]), None), "threads": 1,
                "max_rows": info["train_rows"], "run_commit": sys.argv[3] if len(sys.argv) > 3 else None}
    (OUT / f"results-{ds}.json").write_text(json.dumps(
        {"started": datetime.fromtimestamp((work / "train.parquet").stat().st_mtime, timezone.utc).isoformat(), "settings": settings, "facts": [info], "results": results},
        indent=2))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
