"""A generator for a dataset of a root table and its child tables (issue 20), built from any flat family.

How it models the links, plainly:

- the parent table: one family (any of the registry's, `ouroboros.generators.create`) fitted on the parent's
  non-key columns plus `__n_<child>`, the number of children of each child table; so the count per parent is
  modelled jointly with the parent's columns by the family itself, and drawn with each synthetic parent;
- each child table: one family fitted on the child rows joined with their parent's columns (`__p_<col>`); for a
  sequence (`order_by`) each row also carries the previous event's numeric columns (`__lag_<col>`), the mean of
  all earlier events (`__mean_<col>`, the parent's own level, which one lag alone forgets), the gap to the
  previous event (`__gap`), so the model learns each event given the parent and the events before it. First
  events get their own model (parent -> first event, `__gap` being the first `order_by` value), since they have
  no previous event to carry;
- sampling conditioned on a synthetic parent (and, for a sequence, on the event just drawn) is done by matching:
  the child family draws a pool of joint rows, and each wanted child takes one of the `k` pool rows whose context
  (the parent's numeric columns, and for a later event the lags and means; standardised) is nearest to its own.
  The families' `sample(conditions=)` only fixes exact values of categorical / integer columns, so it cannot condition on a
  continuous parent row; matching works for every family, at the price that a context the pool covers thinly is
  matched approximately (string parent columns are not used for matching: they shape the child only through
  the joint fit). Events are drawn step by step: event t of every parent in one batch query;
- keys are regenerated: parents 0..n-1, children 0..m-1 in each table, every foreign key one of the new parents.

- deeper trees (a customer, their accounts, the accounts' transactions): a child table with children of its own
  carries their counts (`__n_<grandchild>`) as columns of its own model, so each synthetic child row is drawn with
  how many children it has, and a grandchild table is fitted and matched on its parent row exactly as a child is on
  the root's.

Supported: one root table and any tree of tables below it; copula, vae, gan and diffusion (only fit/sample are
used; `gaussian`, numeric-only, refuses the parent's string columns). Each table is conditioned on its parent
row only (a grandchild sees its parent, not the root). Conditional likelihoods are not computed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.neighbors import NearestNeighbors

from ouroboros.dataset import Dataset, TableSpec
from ouroboros.errors import GeneratorError
from ouroboros.generators import create, load

STATE_FILE = "dataset_generator.json"
DTYPES_FILE = "dtypes.parquet"  # an empty frame whose columns carry the key and order dtypes (exact, no parsing)

FIRST = "__first"
GAP = "__gap"
MIN_LATER = 10  # fewer later events than this to fit on: later events are drawn like first ones


def _numeric(df: pl.DataFrame, skip: set[str]) -> list[str]:
    return [c for c, d in df.schema.items() if c not in skip and (d.is_numeric() or d == pl.Boolean)]


@dataclass
class _ChildModel:
    table: str
    fk: str
    key: str
    order_by: str | None
    columns: list[str]  # the child's own modelled columns
    lags: list[str]  # numeric child columns carried as lags (sequences)
    context: list[str]  # pool columns matched on
    parent: str  # the parent table
    parent_key: str
    parent_num: list[str]  # the parent's numeric columns its children are matched on
    generator: Any = None  # plain children: the only model; a sequence: the model of events after the first
    first_generator: Any = None  # a sequence: the model of first events
    first_context: list[str] = field(default_factory=list)
    order_dtype: Any = None


@dataclass
class DatasetGenerator:
    """Fit on a real `Dataset` (one root table, its direct children), sample a synthetic one of `n` parents."""

    family: str = "copula"
    params: dict = field(default_factory=dict)
    seed: int = 0
    k: int = 5  # pool neighbours a child is drawn from (1: always the nearest; larger: more variety, looser fit)
    pool_factor: float = 3.0
    lag_weight: float = 1.0  # >1: match the events before more tightly than the parent (1 measured no different)  # pool rows drawn per wanted child row (at least 2,000)

    def fit(self, ds: Dataset) -> DatasetGenerator:
        roots = ds.roots()
        if len(roots) != 1:
            raise GeneratorError(f"DatasetGenerator models one root table; this dataset has {roots}")
        self.ds_specs, self.root, self.target = ds.specs, roots[0], ds.target
        pk = ds.specs[self.root].key
        parent = ds.tables[self.root]
        self.parent_cols = [c for c in parent.columns if c != pk]
        # a table's rows with the number of children of each of its child tables: for the root these counts are
        # modelled jointly with its columns; for a child table with children of its own (a customer's accounts'
        # transactions) they are columns of the child's model, drawn with each synthetic child row
        counted = {name: self._with_counts(ds, name) for name in ds.order}
        self.children: list[_ChildModel] = []
        for child in ds.order:
            spec = ds.specs[child]
            if spec.parent is None:
                continue
            self.children.append(self._fit_child(ds, child, counted[child], counted[spec.parent]))
        self.parent_gen = create(self.family, **{"seed": self.seed, **self.params}).fit(counted[self.root].drop(pk))
        self.pk_dtype = parent.schema[pk]
        return self

    @staticmethod
    def _with_counts(ds: Dataset, name: str) -> pl.DataFrame:
        df, key = ds.tables[name], ds.specs[name].key
        for child in ds.children(name):
            fk = ds.foreign_key(child)
            n = ds.tables[child].group_by(fk).len().rename({fk: key, "len": f"__n_{child}"})
            df = df.join(n, on=key, how="left", maintain_order="left").with_columns(
                pl.col(f"__n_{child}").fill_null(0))
        return df

    def _context_of(self, ds: Dataset, table: str, frame: pl.DataFrame, child: str) -> tuple[list[str], list[str]]:
        """A parent table's columns `child` sees (`__p_<col>`) and the numeric ones it is matched on: the parent's
        own columns, without its key and foreign key, and how many `child` rows it has (so a pupil with six
        school years starts them early enough to end inside the real range); not its other tables' counts."""
        spec = ds.specs[table]
        skip = {spec.key, ds.foreign_key(table) if spec.parent else None}
        own = f"__n_{child}"
        keep = lambda c: c not in skip and (not c.startswith("__n_") or c == own)  # noqa: E731
        return [c for c in frame.columns if keep(c)], [c for c in _numeric(frame, set()) if keep(c)]

    def _fit_child(self, ds: Dataset, child: str, kids: pl.DataFrame, parent: pl.DataFrame) -> _ChildModel:
        spec = ds.specs[child]
        fk, pk = ds.foreign_key(child), ds.specs[spec.parent].key
        pcols, pnum = self._context_of(ds, spec.parent, parent, child)
        cols = [c for c in kids.columns if c not in (fk, spec.key)]
        prefixed = parent.select(pl.col(pk).alias(fk), *[pl.col(c).alias(f"__p_{c}") for c in pcols])
        rows = kids.select(fk, *cols)
        lags: list[str] = []
        if spec.order_by:
            own = [c for c in cols if c != spec.order_by]
            lags = [c for c in _numeric(kids, {fk, spec.key, spec.order_by}) if not c.startswith("__n_")]
            rows = rows.sort(fk, spec.order_by, maintain_order=True)
            o = pl.col(spec.order_by)
            o = o.to_physical() if kids.schema[spec.order_by].is_temporal() else o
            rows = rows.with_columns(
                (pl.int_range(pl.len()).over(fk) == 0).cast(pl.Int64).alias(FIRST),
                o.cast(pl.Float64).diff().over(fk).fill_null(o.cast(pl.Float64)).alias(GAP),
                *[pl.col(c).cast(pl.Float64).shift(1).over(fk).fill_null(0.0).alias(f"__lag_{c}") for c in lags],
                # the mean of all earlier events: the parent's own level, which one lag alone forgets
                *[(pl.col(c).cast(pl.Float64).cum_sum().shift(1).over(fk)
                   / pl.int_range(pl.len()).over(fk)).fill_null(0.0).fill_nan(0.0).alias(f"__mean_{c}")
                  for c in lags])
            rows = rows.drop(spec.order_by)
            cols = own
        joined = rows.join(prefixed, on=fk, how="left").drop(fk)
        parent_context = [f"__p_{c}" for c in pnum]
        make = lambda k: create(self.family, **{"seed": self.seed + k, **self.params})  # noqa: E731
        link = {"parent": spec.parent, "parent_key": pk, "parent_num": pnum}
        if not spec.order_by:
            return _ChildModel(child, fk, spec.key, None, cols, [], parent_context, generator=make(1).fit(joined),
                               **link)
        # a sequence: the first event given the parent, and each later event given the parent and those before.
        # Two models, because a first event has no previous one: one model with placeholder lags would have to
        # learn a spike at the placeholder, which bends a copula's correlations and every family's fit.
        history = [f"__lag_{c}" for c in lags] + [f"__mean_{c}" for c in lags]
        first = joined.filter(pl.col(FIRST) == 1).drop(FIRST, *history)
        later = joined.filter(pl.col(FIRST) == 0).drop(FIRST)
        first_model = make(1).fit(first)
        later_model = make(2).fit(later) if later.height >= MIN_LATER else None  # else: later events as first ones
        return _ChildModel(child, fk, spec.key, spec.order_by, cols, lags, parent_context + history,
                           generator=later_model, first_generator=first_model, first_context=parent_context,
                           order_dtype=kids.schema[spec.order_by], **link)

    def save(self, path: str | Path) -> Path:
        """Write the fitted dataset generator into folder `path`: each table's family model in its own folder
        (saved by the family itself, so no pickles), and the links as JSON; `load_dataset_generator` reads it."""
        if not hasattr(self, "parent_gen"):
            raise GeneratorError("DatasetGenerator: nothing to save, it is not fitted")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.parent_gen.save(path / "parent")
        children, dtypes = [], {"pk": pl.Series([], dtype=self.pk_dtype)}
        for i, cm in enumerate(self.children):
            if cm.generator is not None:
                cm.generator.save(path / f"child{i}")
            if cm.first_generator is not None:
                cm.first_generator.save(path / f"child{i}_first")
            if cm.order_dtype is not None:
                dtypes[f"order{i}"] = pl.Series([], dtype=cm.order_dtype)
            children.append({k: v for k, v in asdict(cm).items()
                             if k not in ("generator", "first_generator", "order_dtype")}
                            | {"has_generator": cm.generator is not None})
        pl.DataFrame(dtypes).write_parquet(path / DTYPES_FILE)
        state = {"family": self.family, "params": self.params, "seed": self.seed, "k": self.k,
                 "pool_factor": self.pool_factor, "lag_weight": self.lag_weight, "root": self.root,
                 "target": list(self.target) if self.target else None,
                 "specs": {n: asdict(s) for n, s in self.ds_specs.items()}, "order": list(self.ds_specs),
                 "parent_cols": self.parent_cols, "children": children}
        (path / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))
        return path

    def sample(self, n: int, seed: int = 0) -> Dataset:
        rng = np.random.default_rng(seed)
        parents = self.parent_gen.sample(n, seed=seed)
        pk = self.ds_specs[self.root].key
        ids = pl.Series(pk, np.arange(n)).cast(self.pk_dtype)
        tables = {self.root: parents.select(self.parent_cols).insert_column(0, ids)}
        drawn = {self.root: parents.insert_column(0, ids)}  # with the `__n_` counts each table's children need
        for i, cm in enumerate(self.children):
            parent = cm.parent
            counts = np.clip(np.rint(drawn[parent][f"__n_{cm.table}"].cast(pl.Float64).fill_null(0).to_numpy()),
                             0, None)
            drawn[cm.table] = self._sample_child(cm, drawn[parent], counts.astype(int), seed + 1 + i, rng)
            tables[cm.table] = drawn[cm.table].select([c for c in drawn[cm.table].columns if not c.startswith("__n_")])
        from ouroboros.dataset import validate_dataset  # noqa: PLC0415 - the same specs over the new frames

        return validate_dataset(tables, self.ds_specs, self.target)

    def _pool(self, generator, context: list[str], wanted: int, seed: int) -> tuple:
        """A pool of joint rows from `generator` and a neighbour index over their standardised `context`."""
        size = max(2000, int(self.pool_factor * max(wanted, 1)))
        pool = generator.sample(size, seed=seed)
        x = pool.select([pl.col(c).cast(pl.Float64) for c in context]).fill_null(0.0).to_numpy()
        if not context:
            return pool, None, None, None
        mu, sd = x.mean(0), x.std(0)
        sd[sd == 0] = 1.0
        # lag_weight > 1 matches the events before more tightly than the parent's columns
        sd[[i for i, c in enumerate(context) if c.startswith(("__lag_", "__mean_"))]] /= self.lag_weight
        nn = NearestNeighbors(n_neighbors=min(self.k, size)).fit((x - mu) / sd)
        return pool, nn, mu, sd

    def _match(self, pool, nn, mu, sd, ctx: np.ndarray, rng) -> pl.DataFrame:
        if nn is None:  # nothing numeric to match on: the pool's rows at random
            return pool[rng.integers(pool.height, size=len(ctx))]
        _, idx = nn.kneighbors((ctx - mu) / sd)
        pick = idx[np.arange(len(idx)), rng.integers(idx.shape[1], size=len(idx))]
        return pool[pick]

    def _sample_child(self, cm: _ChildModel, parents: pl.DataFrame, counts: np.ndarray, seed: int, rng):
        pk, num = cm.parent_key, cm.parent_num
        total = int(counts.sum())
        owner = np.repeat(np.arange(parents.height), counts)
        pctx = parents.select([pl.col(c).cast(pl.Float64) for c in num]).fill_null(0.0).to_numpy()
        fk_values = parents[pk].gather(owner).alias(cm.fk)
        if cm.order_by is None:
            pool, nn, mu, sd = self._pool(cm.generator, cm.context, total, seed)
            rows = self._match(pool, nn, mu, sd, pctx[owner], rng) if total else pool.head(0)
            out = rows.select(cm.columns).insert_column(0, fk_values)
        else:
            first = self._pool(cm.first_generator, cm.first_context, int((counts > 0).sum()), seed)
            later = (self._pool(cm.generator, cm.context, total - int((counts > 0).sum()), seed + 7919)
                     if cm.generator is not None else None)
            out = self._sequence(cm, first, later, pctx, counts, rng, parents[pk])
        return out.insert_column(0, pl.Series(cm.key, np.arange(out.height), dtype=pl.Int64))

    def _sequence(self, cm, first, later, pctx, counts, rng, parent_keys) -> pl.DataFrame:
        """Events drawn step by step: step t matches every parent with more than t events on (parent, history)."""
        steps = []
        lag = np.zeros((len(counts), len(cm.lags)))
        total = np.zeros((len(counts), len(cm.lags)))  # running sums: the mean of earlier events
        clock = np.zeros(len(counts))
        for t in range(int(counts.max()) if len(counts) else 0):
            live = np.flatnonzero(counts > t)
            if t == 0 or later is None:
                rows = self._match(*first, pctx[live], rng)
            else:
                rows = self._match(*later, np.hstack([pctx[live], lag[live], total[live] / t]), rng)
            gap = np.abs(rows[GAP].cast(pl.Float64).fill_null(0.0).to_numpy()) if t else \
                rows[GAP].cast(pl.Float64).fill_null(0.0).to_numpy()
            clock[live] = clock[live] + gap if t else gap
            if cm.lags:
                lag[live] = rows.select([pl.col(c).cast(pl.Float64) for c in cm.lags]).fill_null(0.0).to_numpy()
                total[live] += lag[live]
            steps.append(rows.select(cm.columns).with_columns(
                pl.Series(cm.fk, parent_keys.gather(live)), pl.Series(cm.order_by, clock[live].copy()),
                pl.Series("__step", np.full(len(live), t))))
        if not steps:
            return pl.DataFrame(schema={cm.fk: parent_keys.dtype, cm.order_by: pl.Float64, **{c: first[0].schema[c]
                                                                                         for c in cm.columns}})
        out = pl.concat(steps).sort(cm.fk, "__step").drop("__step")
        dtype = cm.order_dtype
        order = pl.col(cm.order_by)
        if dtype.is_temporal() or dtype.is_integer():  # back to the real column's type (dates as their days)
            order = order.round().cast(pl.Int64).cast(dtype)
        return out.select(cm.fk, order, *cm.columns)


def load_dataset_generator(path: str | Path) -> DatasetGenerator:
    """A DatasetGenerator saved with `DatasetGenerator.save(path)`."""
    path = Path(path)
    if not (path / STATE_FILE).exists():
        raise GeneratorError(f"{path}: not a saved dataset generator (no {STATE_FILE}); pass the folder given to save()")
    state = json.loads((path / STATE_FILE).read_text())
    gen = DatasetGenerator(state["family"], state["params"], state["seed"], state["k"], state["pool_factor"],
                           state["lag_weight"])
    gen.root, gen.parent_cols = state["root"], state["parent_cols"]
    gen.target = tuple(state["target"]) if state["target"] else None
    gen.ds_specs = {n: TableSpec(**state["specs"][n]) for n in state["order"]}
    dtypes = pl.read_parquet(path / DTYPES_FILE).schema
    gen.pk_dtype = dtypes["pk"]
    gen.parent_gen = load(path / "parent")
    gen.children = []
    for i, c in enumerate(state["children"]):
        has = c.pop("has_generator")
        cm = _ChildModel(**c, generator=load(path / f"child{i}") if has else None,
                         first_generator=load(path / f"child{i}_first") if (path / f"child{i}_first").exists() else None,
                         order_dtype=dtypes.get(f"order{i}"))
        gen.children.append(cm)
    return gen
