"""The univariate data contract a synthetic batch must meet, derived from the real data's profile.

Rules are plain data named after the Great Expectations expectation that enforces them, so the
core stays free of GX while `resources/great_expectations.py` turns each rule into a real suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.schema import INTEGER_DTYPES, ColumnKind, ColumnRole, TableSchema, infer_schema

# 0.5%/99.5% catch a batch winsorised at the real 1%/99% (its own 1%/99% quantiles stay put)
TAIL_QUANTILES = (0.005, 0.01, 0.99, 0.995)
SURE_SEEN = 0.999  # a category a real sample of the batch's size shows with at least this chance must appear


@dataclass(frozen=True)
class Rule:
    expectation: str  # Great Expectations class name, e.g. "ExpectColumnValuesToBeBetween"
    kwargs: dict
    why: str  # one line a reviewer reads when the rule fails


@dataclass(frozen=True)
class Contract:
    rules: tuple[Rule, ...]
    schema: TableSchema
    batch_rows: int
    bootstrap: dict = field(default_factory=dict)  # per column: noise floor of the std over real samples

    def to_dict(self) -> dict:
        return {
            "rules": [asdict(r) for r in self.rules],
            "schema": self.schema.to_dict(),
            "batch_rows": self.batch_rows,
            "bootstrap": self.bootstrap,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Contract:
        return cls(
            rules=tuple(Rule(**r) for r in d["rules"]),
            schema=TableSchema.from_dict(d["schema"]),
            batch_rows=d["batch_rows"],
            bootstrap=d.get("bootstrap", {}),
        )


def validation_frame(df: pl.DataFrame) -> pd.DataFrame:
    """The pandas view of a polars frame that the contract's rules are written against.

    Dtypes are chosen so each polars dtype maps to one pandas dtype whatever the nulls: integers and
    booleans become pandas' nullable arrays (a null no longer turns an int column into float64), and
    strings become object columns, which Great Expectations' type rules recognise.
    """
    columns = {}
    for name, s in df.to_dict().items():
        dtype = s.dtype
        if isinstance(dtype, INTEGER_DTYPES) or dtype == pl.Boolean:
            mask = s.is_null().to_numpy()
            values = s.fill_null(False if dtype == pl.Boolean else 0).to_numpy()
            array_type = pd.arrays.BooleanArray if dtype == pl.Boolean else pd.arrays.IntegerArray
            columns[name] = pd.Series(array_type(values, mask), copy=False)
        elif isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
            columns[name] = pd.Series(s.cast(pl.String).to_numpy().astype(object), dtype=object)
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            # GX's type rule cannot name a zoned pandas dtype: compare as UTC wall time (the scorecard checks the
            # zone itself, as part of the exact dtype)
            columns[name] = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None).to_pandas()
        else:
            columns[name] = s.to_pandas(use_pyarrow_extension_array=False)
    return pd.DataFrame(columns, index=pd.RangeIndex(df.height))


def pandas_dtype_name(dtype: pl.DataType) -> str:
    """Name of the pandas dtype `validation_frame` gives a polars dtype, as GX's type rules spell it."""
    pd_dtype = validation_frame(pl.Series("x", [None], dtype=dtype).to_frame())["x"].dtype
    if pd_dtype == np.dtype(object):
        return "str"  # GX checks an object column value by value; every non-null value must be a str
    return str(pd_dtype) if isinstance(pd_dtype, np.dtype) else type(pd_dtype).__name__


def derive_contract(
    real: pl.DataFrame, gate: GateConfig, batch_rows: int | None = None, seed: int = 0, bootstrap_draws: int = 200,
    id_columns: Sequence[str] = (),
) -> Contract:
    """Rules for columns, types, nulls, ranges, category sets, spread and tails, from `real`.

    Identifiers get only type, null and uniqueness rules; free text only type and null rules."""
    schema = infer_schema(real, id_columns=id_columns)
    n = batch_rows or real.height
    rng = np.random.default_rng(seed)
    rules: list[Rule] = [
        Rule("ExpectTableColumnsToMatchOrderedList", {"column_list": schema.names},
             "a batch has exactly the real columns, in the real order"),
        Rule("ExpectTableRowCountToBeBetween", {"min_value": 1, "max_value": None}, "a batch is not empty"),
    ]
    floors: dict = {}
    for spec in schema.columns:
        col = spec.name
        rules.append(Rule("ExpectColumnValuesToBeInTypeList",
                          {"column": col, "type_list": [pandas_dtype_name(spec.polars_dtype)]},
                          f"{col} keeps the real dtype {spec.dtype}"))
        max_null = min(1.0, spec.null_fraction + gate.null_tolerance) if spec.null_fraction > 0 else 0.0
        rules.append(Rule("ExpectColumnValuesToNotBeNull", {"column": col, "mostly": round(1.0 - max_null, 6)},
                          f"{col} has at most {max_null:.2%} nulls (real: {spec.null_fraction:.2%})"))
        if spec.role != ColumnRole.VALUE:  # regenerated, not modelled (ouroboros.identifiers)
            if spec.role == ColumnRole.ID:
                rules.append(Rule("ExpectColumnValuesToBeUnique", {"column": col},
                                  f"{col} is an identifier: fresh values, unique per row"))
            continue
        if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER) and spec.min is not None:
            rules.append(Rule("ExpectColumnValuesToBeBetween",
                              {"column": col, "min_value": spec.min, "max_value": spec.max, "mostly": gate.range_mostly},
                              f"{col} stays inside the real range [{spec.min:g}, {spec.max:g}]"))
            values = real[col].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
            if len(values) > 1 and values.std() > 0:
                rules.extend(_spread_and_tail_rules(col, values, n, gate, rng, floors))
        elif spec.kind == ColumnKind.CATEGORICAL:
            rules.append(Rule("ExpectColumnValuesToBeInSet", {"column": col, "value_set": list(spec.categories)},
                              f"{col} uses only the {len(spec.categories)} real categories"))
            shares = real[col].cast(pl.String).drop_nulls().alias("level").value_counts(normalize=True, name="p")
            sure = sorted(v for v, p in shares.iter_rows() if 1.0 - (1.0 - p) ** n >= SURE_SEEN)
            if sure:
                rules.append(Rule("ExpectColumnDistinctValuesToContainSet", {"column": col, "value_set": sure},
                                  f"{col} keeps the {len(sure)} categories any real sample of {n} rows shows "
                                  "(category survival)"))
    return Contract(rules=tuple(rules), schema=schema, batch_rows=n, bootstrap=floors)


def _spread_and_tail_rules(col: str, values: np.ndarray, n: int, gate: GateConfig,
                           rng: np.random.Generator, floors: dict) -> list[Rule]:
    """Std and 1%/99% quantile bounds: the spread of real samples of the batch's size, widened by the tolerance."""
    draws = rng.choice(values, size=(200, min(n, 20_000)), replace=True)
    stds = draws.std(axis=1, ddof=1)
    lo_noise, hi_noise = np.quantile(stds, [0.005, 0.995])
    real_std = float(values.std(ddof=1))
    std_lo = float(lo_noise * (1 - gate.spread_tolerance))
    std_hi = float(hi_noise * (1 + gate.spread_tolerance))
    floors[col] = {"real_std": real_std, "std_noise_low": float(lo_noise), "std_noise_high": float(hi_noise)}
    q = np.quantile(draws, TAIL_QUANTILES, axis=1)  # shape (2, draws)
    span = float(np.quantile(values, 0.99) - np.quantile(values, 0.01)) or real_std
    ranges = []
    for i, _ in enumerate(TAIL_QUANTILES):
        lo, hi = np.quantile(q[i], [0.005, 0.995])
        slack = gate.spread_tolerance * span / 4  # tails may wobble by a share of the central span
        ranges.append([float(lo - slack), float(hi + slack)])
    return [
        Rule("ExpectColumnStdevToBeBetween", {"column": col, "min_value": std_lo, "max_value": std_hi},
             f"{col} keeps its spread: std in [{std_lo:.4g}, {std_hi:.4g}] (real {real_std:.4g})"),
        Rule("ExpectColumnQuantileValuesToBeBetween",
             {"column": col, "quantile_ranges": {"quantiles": list(TAIL_QUANTILES), "value_ranges": ranges}},
             f"{col} keeps its tails: 0.5%/1%/99%/99.5% quantiles inside the real sampling band"),
    ]
