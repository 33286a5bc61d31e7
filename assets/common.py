"""Small helpers the asset modules share: table metadata and asset naming."""


import dagster as dg
import polars as pl

OWNER = "team:ml-platform"


def table_metadata(df: pl.DataFrame) -> dict:
    """Row count and column schema, the way the Dagster UI shows them for any table asset."""
    return {
        "dagster/row_count": df.height,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, str(dtype)) for name, dtype in df.schema.items()]
        ),
    }


def generator_key(study: str, generation: int) -> dg.AssetKey:
    return dg.AssetKey([study, f"generator_g{generation}"])


def batch_key(study: str, generation: int) -> dg.AssetKey:
    return dg.AssetKey([study, f"batch_g{generation}"])


def key_text(key: dg.AssetKey) -> str:
    return "/".join(key.path)
