"""Small helpers the asset modules share: table metadata, asset naming and freshness policies."""


from datetime import timedelta

import dagster as dg
import polars as pl

from ouroboros.schema import ColumnRole, TableSchema

OWNER = "team:ml-platform"


ROLE_TEXT = {
    ColumnRole.ID: "identifier: not modelled and not judged by the gate; synthetic rows get fresh unique values "
                   "of the same type and format",
    ColumnRole.TEXT: "free text: not modelled and not judged by the gate; synthetic rows get text made of words "
                     "common to several real rows",
}


def table_metadata(df: pl.DataFrame, schema: TableSchema | None = None) -> dict:
    """Row count and column schema, the way the Dagster UI shows them for any table asset; with `schema`, each
    column also says how the pipeline treats it (its kind, and whether it is an identifier or free text)."""
    specs = {c.name: c for c in schema.columns} if schema is not None else {}

    def column(name: str, dtype) -> dg.TableColumn:
        spec = specs.get(name)
        if spec is None:
            return dg.TableColumn(name, str(dtype))
        role = ROLE_TEXT.get(spec.role, f"{spec.kind.value}: modelled by the generators and judged by the gate")
        if spec.role_reason:  # why it was taken as an identifier (a row index 1..n, named like one, ...)
            role = f"{role} ({spec.role_reason})"
        return dg.TableColumn(name, str(dtype), description=role, tags={"role": spec.role.value})

    meta = {"dagster/row_count": df.height,
            "dagster/column_schema": dg.TableSchema(columns=[column(n, t) for n, t in df.schema.items()])}
    if schema is not None:
        meta["regenerated_columns"] = dg.MetadataValue.json(schema.identifiers())  # column -> why
    return meta


def freshness_policy(max_age_hours: float | None) -> dg.FreshnessPolicy | None:
    """The policy of an asset that goes stale silently when nothing rebuilds it (the real table, the champion):
    failing freshness once it was last materialised longer ago than `max_age_hours`; None: no policy."""
    return None if max_age_hours is None else dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=max_age_hours))


def generator_key(study: str, generation: int) -> dg.AssetKey:
    return dg.AssetKey([study, f"generator_g{generation}"])


def batch_key(study: str, generation: int) -> dg.AssetKey:
    return dg.AssetKey([study, f"batch_g{generation}"])


def key_text(key: dg.AssetKey) -> str:
    return "/".join(key.path)
