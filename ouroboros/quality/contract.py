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
from scipy import stats

from ouroboros.config import GateConfig
from ouroboros.quality.stats import upper_rate
from ouroboros.schema import INTEGER_DTYPES, ColumnKind, ColumnRole, TableSchema, infer_schema


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
    bootstrap: dict = field(default_factory=dict)  # per column: the spread rule's real quantiles and positions

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
    """Rules for columns, types, nulls, ranges, category sets, category survival and spread, from `real`.

    Each rule a batch of fresh real rows could break by chance is set where such a batch breaks it with
    chance at most the contract's share of `gate.false_refusal_rate`, divided over those rules (Bonferroni),
    or at the user's threshold (`null_tolerance`, `range_mostly`, `spread_tolerance`) if that is wider.
    Identifiers get only type, null and uniqueness rules; free text only type and null rules."""
    schema = infer_schema(real, id_columns=id_columns)
    n = batch_rows or real.height
    rng = np.random.default_rng(seed)
    modelled = [c for c in schema.columns if c.role == ColumnRole.VALUE]
    numeric = [c for c in modelled if c.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER) and c.min is not None]
    categorical = [c for c in modelled if c.kind == ColumnKind.CATEGORICAL]
    # rules that sampling noise can break: nulls per column, range and spread per numeric, set and survival per category
    chance_rules = len(schema.columns) + 2 * len(numeric) + 2 * len(categorical)
    level = gate.false_refusal_rate * gate.contract_share / max(chance_rules, 1)
    n_t = real.height
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
        k = real[col].null_count()
        noise = honest_share(k, n_t, n, level)
        max_null = min(1.0, max(spec.null_fraction + gate.null_tolerance, noise))
        rules.append(Rule("ExpectColumnValuesToNotBeNull", {"column": col, "mostly": round(1.0 - max_null, 6)},
                          f"{col} has at most {max_null:.2%} nulls (real: {spec.null_fraction:.2%}; fresh real "
                          f"batches of {n} rows stay under {noise:.2%})"))
        if spec.role != ColumnRole.VALUE:  # regenerated, not modelled (ouroboros.identifiers)
            if spec.role == ColumnRole.ID:
                rules.append(Rule("ExpectColumnValuesToBeUnique", {"column": col},
                                  f"{col} is an identifier: fresh values, unique per row"))
            continue
        if spec in numeric:
            values = real[col].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
            # a fresh value falls outside the real range with chance about 2 / (rows + 1)
            outside = honest_share(2, len(values), n, level)
            mostly = min(gate.range_mostly, 1.0 - outside)
            rules.append(Rule("ExpectColumnValuesToBeBetween",
                              {"column": col, "min_value": spec.min, "max_value": spec.max, "mostly": round(mostly, 6)},
                              f"{col} stays inside the real range [{spec.min:g}, {spec.max:g}] for {mostly:.2%} of rows"))
            if len(values) > 1 and values.std() > 0:
                rules.append(_spread_rule(col, values, n, gate, rng, floors, level, bootstrap_draws))
        elif spec in categorical:
            counts = real[col].cast(pl.String).drop_nulls().rename("level").to_frame().group_by("level").agg(
                pl.len().alias("k"))
            seen = int(counts["k"].sum())
            singletons = int((counts["k"] == 1).sum())
            # Good-Turing: fresh rows show a level real_train lacks about as often as real_train shows one once
            unseen = honest_share(singletons, max(seen, 1), n, level)
            rules.append(Rule("ExpectColumnValuesToBeInSet",
                              {"column": col, "value_set": list(spec.categories), "mostly": round(1.0 - unseen, 6)},
                              f"{col} uses the {len(spec.categories)} real categories in at least {1 - unseen:.2%} of "
                              "rows (fresh real rows show unseen levels at about real_train's singleton share)"))
            p = counts["k"].to_numpy() / max(seen, 1)
            # a category must appear when a real sample of n rows misses it with chance below the rule's level
            sure_mask = (counts["k"].to_numpy() >= 10) & ((1.0 - p) ** n <= level / max(len(p), 1))
            sure = sorted(counts["level"].filter(pl.Series(sure_mask)).to_list())
            if sure:
                rules.append(Rule("ExpectColumnDistinctValuesToContainSet", {"column": col, "value_set": sure},
                                  f"{col} keeps the {len(sure)} categories any real sample of {n} rows shows "
                                  "(category survival)"))
    return Contract(rules=tuple(rules), schema=schema, batch_rows=n, bootstrap=floors)


def honest_share(k: int, n_real: int, n: int, level: float) -> float:
    """Share of n rows a fresh real batch exceeds with chance at most `level`, when a rate was seen k times in
    n_real real rows (its Clopper-Pearson upper bound, then the binomial quantile; half the level each)."""
    rate = upper_rate(k, n_real, level / 2)
    return float(stats.binom.isf(level / 2, n, rate) / n) if n else 0.0


SPREAD_QUANTILES = (0.05, 0.25, 0.75, 0.95)  # where the contract looks at a numeric column's spread


def _spread_rule(col: str, values: np.ndarray, n: int, gate: GateConfig, rng: np.random.Generator, floors: dict,
                 level: float, draws: int) -> Rule:
    """Spread as quantiles on the real data's rank scale, the contract's form of the scorecard's rank-normal
    spread ratio (a raw std would be decided by a column's largest values: half the share of a cap held by 0.5%
    of rows moves it beyond noise). The batch's p-quantile must lie between the real values at two real ECDF
    positions: those fresh real batches of n rows reach with chance at most the rule's level (the batch
    quantile's position is Beta distributed, widened for real_train's own noise about the positions), or, if
    wider, the positions a normal column reaches with its std off by `spread_tolerance`, Phi((1 -+ tol) z_p).
    Ties need no care: at a spike both ends are the spike's value, and the batch's quantile lands on it unless the
    spike's share moved beyond noise. `rng` and `draws` are unused: the band is exact, not bootstrapped."""
    del rng, draws
    real = np.sort(values)
    k = len(SPREAD_QUANTILES)
    a = level / (2 * k)  # two-sided, Bonferroni over the rule's quantiles
    widen = np.sqrt(1.0 + n / len(real))
    lo_values, hi_values, positions = [], [], []
    for q in SPREAD_QUANTILES:
        rank = max(1, min(n, int(np.ceil(q * n))))
        lo_noise, hi_noise = stats.beta.ppf([a, 1 - a], rank, n + 1 - rank)
        lo_noise, hi_noise = q - (q - lo_noise) * widen, q + (hi_noise - q) * widen
        z = stats.norm.ppf(q)
        tol = sorted(stats.norm.cdf([(1 - gate.spread_tolerance) * z, (1 + gate.spread_tolerance) * z]))
        p_lo, p_hi = max(0.0, min(lo_noise, tol[0])), min(1.0, max(hi_noise, tol[1]))
        lo_values.append(float(np.quantile(real, p_lo, method="lower")))
        hi_values.append(float(np.quantile(real, p_hi, method="higher")))
        positions.append([round(float(p_lo), 6), round(float(p_hi), 6)])
    floors[col] = {"quantiles": list(SPREAD_QUANTILES), "real": [float(np.quantile(real, q)) for q in SPREAD_QUANTILES],
                   "positions": positions}
    ranges = [[lo, hi] for lo, hi in zip(lo_values, hi_values, strict=True)]
    return Rule("ExpectColumnQuantileValuesToBeBetween",
                {"column": col, "quantile_ranges": {"quantiles": list(SPREAD_QUANTILES), "value_ranges": ranges}},
                f"{col} keeps its spread: its {', '.join(f'{q:.0%}' for q in SPREAD_QUANTILES)} quantiles lie where "
                f"fresh real batches of {n} rows put them, at real ECDF positions {positions} (or within "
                f"spread_tolerance of a normal column's std)")
