"""Real-data assets: the validated real table, its seeded train/holdout split, and the data contract."""


import shutil
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import OWNER, table_metadata
from ouroboros.config import PipelineConfig
from ouroboros.landing import conform_landed
from ouroboros.quality.contract import derive_contract
from ouroboros.schema import SchemaError, infer_schema
from ouroboros.split import train_holdout_split
from ouroboros.tables import TableReadError, read_table
from ouroboros.verdict import fingerprint
from resources import GreatExpectationsResource, LakeResource
from resources.lake import atomic_write_json, atomic_write_parquet

CONTRACT_SUITE = "real_contract"


class RealDataConfig(dg.Config):
    landed_file: str | None = None  # set by the landing sensor: a new file to validate and add


def build_real_assets(pipeline: PipelineConfig) -> list:
    data = pipeline.data

    @dg.asset(
        group_name="real", kinds={"polars", "parquet"}, owners=[OWNER],
        description=f"The real table from {data.source} plus every landed file accepted so far; "
                    "the schema is checked before anything downstream sees it.",
    )
    def real_data(context: dg.AssetExecutionContext, config: RealDataConfig,
                  lake: LakeResource) -> dg.Output[pl.DataFrame]:
        df = read_table(data.source)
        if config.landed_file:
            ingest_landed_file(context, Path(config.landed_file), infer_schema(df), lake)
        accepted = sorted(lake.accepted_dir().glob("*.parquet"))
        if accepted:
            df = pl.concat([df, *[pl.read_parquet(p) for p in accepted]], how="vertical_relaxed")
        try:
            infer_schema(df, target=data.target)
        except SchemaError as exc:
            raise dg.Failure(f"{data.source}: {exc}") from exc
        context.log.info(f"real_data: {df.height} rows from the source and {len(accepted)} accepted landed file(s)")
        return dg.Output(df, metadata={**table_metadata(df), "source": data.source,
                                       "accepted_files": len(accepted), "fingerprint": fingerprint(df)})

    @dg.multi_asset(
        group_name="real", can_subset=False,
        outs={
            "real_train": dg.AssetOut(kinds={"polars", "parquet"}, owners=[OWNER],
                                      description="Real rows generators may learn from (seeded split, stratified "
                                                  "on the target)."),
            "real_holdout": dg.AssetOut(kinds={"polars", "parquet"}, owners=[OWNER],
                                        description="Real rows no generator ever sees: the yardstick for utility "
                                                    "and privacy."),
        },
    )
    def real_split(real_data: pl.DataFrame):
        stratify = data.target if real_data[data.target].n_unique() <= 50 else None
        train, holdout = train_holdout_split(real_data, data.holdout_fraction, data.seed, stratify=stratify)
        yield dg.Output(train, output_name="real_train", metadata=table_metadata(train))
        yield dg.Output(holdout, output_name="real_holdout", metadata=table_metadata(holdout))

    @dg.asset(
        group_name="real", kinds={"great_expectations"}, owners=[OWNER],
        description="The univariate contract every synthetic batch must meet (columns, types, nulls, ranges, "
                    "category sets, spread and tails), derived from real_train and saved as a GX suite.",
    )
    def real_contract(real_train: pl.DataFrame, gx_context: GreatExpectationsResource) -> dg.Output[dict]:
        rows = [s.rows or real_train.height for s in pipeline.studies]
        # the smallest batch has the widest sampling noise: bounds derived for it hold for larger ones
        contract = derive_contract(real_train, pipeline.gate, batch_rows=min(rows), seed=data.seed)
        gx_context.save_suite(CONTRACT_SUITE, contract)
        table = "\n".join(f"| `{r.expectation}` | {r.why} |" for r in contract.rules)
        return dg.Output(contract.to_dict(), metadata={
            "rules": len(contract.rules),
            "suite": CONTRACT_SUITE,
            "contract": dg.MetadataValue.md("| expectation | rule |\n|---|---|\n" + table),
        })

    return [real_data, real_split, real_contract]


def ingest_landed_file(context: dg.AssetExecutionContext, path: Path, schema, lake: LakeResource) -> bool:
    """Accept a landed file (copy into the real table's folder) or quarantine it with the reason; never delete."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    try:
        df = conform_landed(read_table(path), schema, str(path))
    except (TableReadError, SchemaError) as exc:
        target = lake.quarantine_dir() / f"{stamp}_{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target)
        atomic_write_json(target.with_name(target.name + ".reason.json"),
                          {"file": path.name, "reason": str(exc), "quarantined_at": stamp})
        context.log.error(f"quarantined {path.name}: {exc}")
        return False
    atomic_write_parquet(lake.accepted_dir() / f"{stamp}_{path.stem}.parquet", df)
    archive = lake.path / "real" / "landed" / f"{stamp}_{path.name}"
    archive.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), archive)
    context.log.info(f"accepted {path.name}: {df.height} rows")
    return True
