"""On-demand benchmark: land one large CSV (made on the fly, ~1 GB by default) and ingest it through the real
landing sensor and production job (ingest step only), in a temp lake. Prints size, rows, time and peak memory.

    .venv/bin/python benchmarks/bench_landing.py            # ~1 GB CSV
    .venv/bin/python benchmarks/bench_landing.py --mb 200   # smaller

Not part of the test suite (minutes and several GB of memory at full size).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import polars as pl  # noqa: E402

from ouroboros.config import PipelineConfig  # noqa: E402
from pipelines.definitions import PRODUCTION_JOB, build_definitions  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from resources import LakeResource  # noqa: E402

DEMO = ROOT / "ouroboros" / "data" / "crashes.parquet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1000.0, help="approximate CSV size in MB")
    args = parser.parse_args(argv)
    demo = pl.read_parquet(DEMO)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = tmp / "real.parquet"
        demo.write_parquet(source)  # the whole demo table: the contract then knows every category and range
        lake, landing = tmp / "lake", tmp / "landing"
        landing.mkdir()
        settings = Settings(config_path=tmp / "x.yaml", lake=lake, mlflow_tracking_uri=f"sqlite:///{lake}/m.db",
                            mlflow_artifacts=lake / "mlartifacts", gx_root=lake / "gx", landing=landing)
        config = PipelineConfig.model_validate({
            "data": {"source": str(source), "target": "outcome"},
            "studies": [{"name": "prod", "generations": 1}], "landing": {"settle_seconds": 0}})
        defs = build_definitions(config, settings)

        started = time.perf_counter()
        bytes_per_row = len(demo.head(1000).write_csv()) / 1000
        rows = int(args.mb * 1e6 / bytes_per_row)
        big = landing / "big.csv"
        chunk = demo
        with open(big, "wb") as f:
            written = 0
            while written < rows:
                part = chunk.sample(n=min(len(chunk), rows - written), with_replacement=True, seed=written)
                part.write_csv(f, include_header=written == 0)
                written += part.height
        make_s = time.perf_counter() - started
        size_mb = big.stat().st_size / 1e6
        print(f"made {big.name}: {rows:,} rows, {size_mb:,.0f} MB in {make_s:.1f} s")

        with dg.instance_for_test() as instance:
            sensor = defs.resolve_sensor_def("landing_sensor")
            cursor = None
            requests = []
            for _ in range(2):
                data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor,
                                                                    definitions=defs))
                cursor, requests = data.cursor, requests + list(data.run_requests or [])
            [request] = requests
            started = time.perf_counter()
            result = defs.resolve_job_def(PRODUCTION_JOB).execute_in_process(
                run_config=request.run_config, instance=instance, asset_selection=[dg.AssetKey("real_ingest")],
                raise_on_error=False)
            ingest_s = time.perf_counter() - started
        table = LakeResource(root=str(lake)).read_real()
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        base = demo.height
        print(f"ingest: success={result.success}, table rows {table.height:,} ({base:,} + {table.height - base:,}), "
              f"{ingest_s:.1f} s ({size_mb / ingest_s:.1f} MB/s), peak RSS {peak_gb:.1f} GB")
        return 0 if result.success and table.height == base + rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
