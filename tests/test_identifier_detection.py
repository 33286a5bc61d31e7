"""Identifiers found as users expect (issue 18 item 5), each with the reason the schema records."""

from __future__ import annotations

import uuid

import numpy as np
import polars as pl
import pytest

from ouroboros.generators import create
from ouroboros.schema import ColumnRole, TableSchema, infer_schema

N = 500


def _frame(**columns) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"x1": rng.normal(size=N), "x2": rng.choice(["a", "b"], N), **columns})


def _role(df: pl.DataFrame, name: str) -> tuple[ColumnRole, str]:
    spec = infer_schema(df).column(name)
    return spec.role, spec.role_reason


def test_a_float_typed_rownames_column_is_a_row_index():
    role, why = _role(_frame(rownames=np.arange(1, N + 1, dtype=float)), "rownames")
    assert role == ColumnRole.ID and "row index" in why and "rownames" in why


@pytest.mark.parametrize("name", ["Unnamed: 0", "index", "...1", ""])
def test_pandas_and_readr_index_names(name):
    rng = np.random.default_rng(1)
    role, why = _role(_frame(**{name: rng.permutation(N) + 7}), name)  # not 1..n: the name alone says so
    assert role == ColumnRole.ID and "named like a row index" in why


def test_a_shuffled_unique_integer_0_to_n_minus_1():
    rng = np.random.default_rng(2)
    role, why = _role(_frame(seq=rng.permutation(N)), "seq")
    assert role == ColumnRole.ID and why == f"unique whole numbers 0..{N - 1} (a row index)"


def test_an_x_column_1_to_n_as_r_reads_row_names_back():
    role, why = _role(_frame(X=np.arange(1, N + 1)), "X")
    assert role == ColumnRole.ID and "1.." in why


def test_a_training_split_of_a_row_index_is_still_one():
    rng = np.random.default_rng(3)
    keep = rng.choice(np.arange(1, 2 * N + 1), int(1.6 * N), replace=False)  # an 80% split of 1..2N
    rng.shuffle(keep)  # a random split is not in file order
    role, why = _role(pl.DataFrame({"row": keep, "v": rng.normal(size=len(keep))}), "row")
    assert role == ColumnRole.ID and "filling" in why


def test_increasing_unique_integers_are_a_sequence_key():
    rng = np.random.default_rng(4)
    role, why = _role(_frame(order=np.cumsum(rng.integers(1, 50, N)) + 10_000), "order")
    assert role == ColumnRole.ID and "increasing in file order" in why


def test_a_uuid_string_is_an_identifier():
    role, why = _role(_frame(key=[str(uuid.UUID(int=i * 7919 + 1)) for i in range(N)]), "key")
    assert role == ColumnRole.ID and "unique strings" in why


def test_a_declared_column_says_so():
    schema = infer_schema(_frame(k=np.arange(N)), id_columns=["x1"])
    assert schema.column("x1").role == ColumnRole.ID
    assert schema.identifiers()["x1"] == "declared in data.id_columns"


@pytest.mark.parametrize("values", [
    np.random.default_rng(5).lognormal(5, 1, N),  # a unique-per-row float amount
    np.round(np.random.default_rng(6).lognormal(8, 2, N) * 100).astype(np.int64),  # unique heavy-tailed cents
])
def test_unique_amounts_stay_values(values):
    assert len(np.unique(values)) == N
    rng = np.random.default_rng(7)
    df = _frame(amount=rng.permutation(values))
    assert _role(df, "amount") == (ColumnRole.VALUE, "")
    assert "amount" not in infer_schema(df).identifiers()


def test_the_reason_round_trips_and_old_schemas_still_load():
    schema = infer_schema(_frame(rownames=np.arange(1, N + 1)))
    again = TableSchema.from_dict(schema.to_dict())
    assert again == schema and again.identifiers() == schema.identifiers() == {
        "rownames": "named like a row index (rownames) and unique whole numbers"}
    old = schema.to_dict()
    for c in old["columns"]:
        c.pop("role_reason")
    assert TableSchema.from_dict(old).column("rownames").role == ColumnRole.ID


def test_a_float_row_index_is_regenerated_not_modelled():
    df = _frame(rownames=np.arange(1, N + 1, dtype=float))
    out = create("copula", seed=0).fit(df).sample(200, seed=1)
    assert out.schema == df.schema
    assert out["rownames"].n_unique() == 200 and out["rownames"].min() > N  # fresh values, none of the real ones


def test_the_ui_schema_says_which_columns_are_identifiers_and_why():
    from assets.common import table_metadata

    df = _frame(rownames=np.arange(1, N + 1))
    meta = table_metadata(df, infer_schema(df))
    why = meta["regenerated_columns"].data["rownames"]
    assert "row index" in why
    described = {c.name: c.description for c in meta["dagster/column_schema"].columns}
    assert why in described["rownames"] and "row index" not in (described["x1"] or "")
