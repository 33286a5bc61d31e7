"""The gate for a dataset of several tables (issue 20): the links between tables, judged per entity.

Each check compares the batch with real_train and refuses only when two things hold, as the flat gate does: the
difference is larger than a level that matters (`DatasetLimits`) AND a test says fresh real entities of the
batch's size would rarely show it (p below the false-refusal rate shared over every test of the batch,
Bonferroni). Every statistic is computed on one value per entity (a count, a mean, one randomly drawn pair or gap,
a per-entity correlation), so entities are the independent units the tests assume; rows of one entity never are.

Checks, per link (parent table -> child table):
- integrity (exact, no test): every foreign key resolves, every primary key is unique;
- `children_per_parent`: KS of the number of children per parent (zeros included);
- `association`: Spearman's rho of each numeric parent column with the child count and with the per-parent mean
  of each numeric child column; Fisher z test of batch rho against real rho;
- `sibling`: the correlation between two children of the same parent (one random pair per parent, a numeric child
  column); children shuffled across parents lose it;
- for a sequence (`order_by`): `gap` (KS of one random gap per parent), `first`/`last` (KS of the first and last
  event's numeric columns), `trend` (mean per-parent Spearman rho of each numeric column against the position)
  and `smoothness` (mean per-parent von Neumann ratio, squared successive difference over variance; about 2
  for events in random order): Welch t tests;
- `entity_copy`: share of batch entities (a root row with all its descendants, keys left out, children in order)
  identical to a real_train entity, against the share real_holdout entities show (Fisher's exact test);
- entity-level privacy and utility on one feature vector per entity (`ouroboros.quality.gate_entity`):
  `entity_closer_to_train` (binomial against the honest share n_train / (n_train + n_holdout)),
  `entity_near_copy` (Fisher's exact against real_holdout) and `entity_utility` (a model of the root table's
  target trained on the batch against ones trained on real_train entities, children's aggregates included;
  skipped, with the reason in `DatasetVerdict.skipped`, when the dataset has no target on its root table).

Each table's own columns are judged by the flat gate (`ouroboros.quality.evaluate`, keys left out: they are
regenerated, never modelled): `judge_tables`. `judge_whole` runs both and shares the false-refusal rate equally
between the link checks and each table's flat gate, so fresh real entities are refused with chance at most
`gate.false_refusal_rate` for the dataset as a whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl
from scipy import stats

from ouroboros.canonical import row_digests
from ouroboros.config import GateConfig
from ouroboros.dataset import Dataset
from ouroboros.quality.gate_entity import Tested, entity_frame, entity_privacy, entity_utility
from ouroboros.quality.gate_entity import key_columns as _keys
from ouroboros.quality.scorecard import Scorecard, evaluate


@dataclass(frozen=True)
class DatasetLimits:
    """Levels that matter (a batch closer than these passes whatever the test says), and the error budget."""

    false_refusal_rate: float = 0.01  # chance that fresh real entities are refused, over all tests together
    max_count_ks: float = 0.1  # KS distance of children per parent
    max_rho_gap: float = 0.15  # |batch rho - real rho| of an association or a sibling correlation
    max_ks: float = 0.15  # KS distance of gaps, first and last events
    max_trend_gap: float = 0.15  # |batch - real| mean per-parent Spearman rho against the position
    max_smoothness_gap: float = 0.3  # |batch - real| mean per-parent von Neumann ratio (random order: about 2)
    max_copy_excess: float = 0.01  # share of batch entities copying a real_train entity beyond holdout's share
    min_entities: int = 20  # fewer entities with a statistic than this: the check is skipped, said so
    # entity-level privacy and utility (ouroboros.quality.gate_entity)
    # share of entities nearer their training entity than chance allows: refused beyond q + this * (1 - q), q the
    # honest closer-to-train share (0.5 + 0.025 for equal sizes). 5%: the share of entities memorised that
    # a user would call a leak, and above the noise of a few hundred fresh entities (sd of the share about 0.02)
    max_memorised_share: float = 0.05
    near_copy_distance: float = 0.05  # real std per numeric entity feature (RMS): a near copy, as the flat gate's
    # TRTR - TSTR in AUC points (class target) or R2 points (numeric target): 0.05 is a loss a model's user sees;
    # fresh real entities differ from real_train draws by 0.01-0.02 at 500 entities (docs/relational-gate-entity.md)
    max_utility_drop: float = 0.05
    min_utility_skill: float = 0.02  # real entities must beat chance by this much for utility to be judged
    privacy_entities: int = 2_000  # batch (and holdout) entities whose nearest real entities are found
    reference_entities: int = 10_000  # real_train (and real_holdout) entities searched, at most
    utility_entities: int = 2_000  # entities each utility model is fitted on, and real_holdout entities scored
    utility_draws: int = 10  # TRTR models on draws of real_train entities: the honest spread of the score
    min_utility_entities: int = 100  # fewer entities with a target value: utility is skipped, said so
    seed: int = 0


@dataclass
class Check:
    name: str  # e.g. "children_per_parent:patients->visits"
    statistic: float
    real: float | None  # the real side's value (rho, tau, share), None for a distance
    limit: float
    p_value: float | None
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DatasetVerdict:
    passed: bool
    alpha: float  # the per-test level after Bonferroni
    checks: list[Check] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check name -> why it was not run

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "alpha": self.alpha, "checks": [c.to_dict() for c in self.checks],
                "skipped": dict(self.skipped)}


def _numeric(df: pl.DataFrame, skip: set[str]) -> list[str]:
    return [c for c, d in df.schema.items() if c not in skip and (d.is_numeric() or d == pl.Boolean)]


def _num(s: pl.Series) -> np.ndarray:
    if s.dtype.is_temporal():
        s = s.to_physical()
    return s.cast(pl.Float64).to_numpy()


def integrity_checks(ds: Dataset) -> list[Check]:
    """Exact checks: primary keys unique, every foreign key found among the parent's keys."""
    out = []
    for name in ds.order:
        spec, df = ds.specs[name], ds.tables[name]
        if spec.key is not None:
            dup = df.height - df[spec.key].n_unique()
            out.append(Check(f"primary_key:{name}", float(dup), None, 0.0, None, dup == 0,
                             f"{dup} row(s) repeat a key of {spec.key!r}" if dup else ""))
        if spec.parent is not None:
            fk = ds.foreign_key(name)
            parent_keys = ds.tables[spec.parent].select(pl.col(ds.specs[spec.parent].key).alias(fk)).unique()
            orphans = df.select(fk).join(parent_keys, on=fk, how="anti").height
            out.append(Check(f"foreign_key:{spec.parent}->{name}", float(orphans), None, 0.0, None, orphans == 0,
                             f"{orphans} row(s) have a {fk!r} with no parent" if orphans else ""))
    return out


class _Link:
    """One parent -> child link of a dataset, as per-parent statistics."""

    def __init__(self, ds: Dataset, child: str, rng: np.random.Generator) -> None:
        spec = ds.specs[child]
        self.parent_name, self.child_name = spec.parent, child
        pspec = ds.specs[spec.parent]
        fk, pk = ds.foreign_key(child), pspec.key
        parent, kids = ds.tables[spec.parent], ds.tables[child]
        self.order_by = spec.order_by
        skip_child = {fk, spec.key, *(s.foreign_key or "" for s in ds.specs.values())} - {None}
        skip_child.add(spec.order_by or "")
        self.child_cols = _numeric(kids, skip_child | _keys(ds))
        self.parent_cols = _numeric(parent, {pk, pspec.foreign_key or ""} | _keys(ds))
        order = [fk, spec.order_by] if spec.order_by else [fk]
        kids = kids.sort(order, maintain_order=True)
        counts = kids.group_by(fk).len().rename({fk: pk, "len": "__n"})
        p = parent.select(pk, *self.parent_cols).join(counts, on=pk, how="left").with_columns(
            pl.col("__n").fill_null(0))
        self.counts = p["__n"].to_numpy().astype(float)
        self.parent_values = {c: _num(p[c]) for c in self.parent_cols}
        means = kids.group_by(fk).agg([pl.col(c).cast(pl.Float64).mean() for c in self.child_cols]).rename({fk: pk})
        pm = p.select(pk).join(means, on=pk, how="left", maintain_order="left")
        self.child_means = {c: pm[c].to_numpy() for c in self.child_cols}
        # per-parent statistics over the ordered children, vectorised (one polars pass per statistic)
        self.kids = kids.with_columns(pl.int_range(pl.len()).over(fk).alias("__pos"),
                                      pl.Series("__r", rng.random(kids.height)))
        self.fk = fk
        self.rng = rng

    @property
    def name(self) -> str:
        return f"{self.parent_name}->{self.child_name}"

    def _per_parent(self, expr: pl.Expr, min_children: int) -> np.ndarray:
        g = self.kids.group_by(self.fk).agg(expr.alias("__v"), pl.len().alias("__k"))
        return g.filter(pl.col("__k") >= min_children)["__v"].cast(pl.Float64).to_numpy()

    def sibling_pairs(self, col: str) -> tuple[np.ndarray, np.ndarray]:
        """One random pair of children per parent of two or more (the pair drawn by a random rank)."""
        v = pl.col(col).cast(pl.Float64).sort_by("__r")
        g = self.kids.group_by(self.fk).agg(v.get(0, null_on_oob=True).alias("a"),
                                            v.get(1, null_on_oob=True).alias("b")).drop_nulls()
        return g["a"].to_numpy(), g["b"].to_numpy()

    def gaps(self) -> np.ndarray:
        """One random gap between consecutive events per parent of two or more."""
        o = pl.col(self.order_by)
        o = o.to_physical() if self.kids.schema[self.order_by].is_temporal() else o
        gap = o.cast(pl.Float64).diff().slice(1).sort_by(pl.col("__r").slice(1))
        return self._per_parent(gap.first(), 2)

    def ends(self, col: str, last: bool) -> np.ndarray:
        c = pl.col(col).cast(pl.Float64)
        return self._per_parent(c.last() if last else c.first(), 1)

    def trends(self, col: str) -> np.ndarray:
        """Per parent of three or more: Spearman's rho of the column against the position in the sequence."""
        out = self._per_parent(pl.corr(pl.col(col).cast(pl.Float64), pl.col("__pos").cast(pl.Float64),
                                       method="spearman"), 3)
        return out[np.isfinite(out)]

    def smoothness(self, col: str) -> np.ndarray:
        """Per parent of three or more: the von Neumann ratio, mean squared successive difference / variance."""
        c = pl.col(col).cast(pl.Float64)
        out = self._per_parent((c.diff().slice(1) ** 2).mean() / c.var(ddof=0), 3)
        return out[np.isfinite(out)]


def _spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return 0.0, int(ok.sum())
    return float(stats.spearmanr(x[ok], y[ok]).statistic), int(ok.sum())


def _pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return 0.0, int(ok.sum())
    return float(np.corrcoef(x[ok], y[ok])[0, 1]), int(ok.sum())


def _fisher_p(r1: float, n1: int, r2: float, n2: int) -> float:
    """Two-sided p of equal correlations (Fisher z; spearman's variance inflated by 1.06, as Fieller et al.)."""
    clip = lambda r: np.clip(r, -0.999999, 0.999999)  # noqa: E731
    z = (np.arctanh(clip(r1)) - np.arctanh(clip(r2))) / np.sqrt(1.06 / (n1 - 3) + 1.06 / (n2 - 3))
    return float(2 * stats.norm.sf(abs(z)))


def _entity_digests(ds: Dataset) -> np.ndarray:
    """One digest per root entity of the first root table: its non-key columns and its children's, in order."""
    keys = _keys(ds)
    root = ds.roots()[0]
    pk = ds.specs[root].key
    parent = ds.tables[root]
    cols = [c for c in parent.columns if c not in keys]
    parts = [pl.DataFrame({"__pk": parent[pk], "__d": row_digests(parent, cols).astype(np.uint64)})
             if cols else pl.DataFrame({"__pk": parent[pk], "__d": np.zeros(parent.height, np.uint64)})]
    for child in ds.children(root):
        spec, kids = ds.specs[child], ds.tables[child]
        fk = ds.foreign_key(child)
        ccols = [c for c in kids.columns if c not in keys]
        d = pl.DataFrame({"__pk": kids[fk], "__d": row_digests(kids, ccols).astype(np.uint64)})
        if spec.order_by:
            d = d.with_columns(kids[spec.order_by].alias("__o")).sort("__pk", "__o").drop("__o")
        else:
            d = d.sort("__pk", "__d")
        # the ordered children as one value (polars' hash is used within this run only: never stored)
        agg = d.group_by("__pk", maintain_order=True).agg(pl.col("__d").cast(pl.String).str.join(",").hash(1)
                                                          .alias("__d"))
        parts.append(parent.select(pl.col(pk).alias("__pk")).join(agg, on="__pk", how="left",
                                                                  maintain_order="left").fill_null(0))
    return np.stack([p["__d"].to_numpy().astype(np.uint64) for p in parts], axis=1)


def _copy_share(batch: np.ndarray, train: np.ndarray) -> int:
    known = {row.tobytes() for row in train}
    return sum(row.tobytes() in known for row in batch)


def judge_dataset(batch: Dataset, real_train: Dataset, real_holdout: Dataset,
                  limits: DatasetLimits | None = None) -> DatasetVerdict:
    """The verdict on a synthetic dataset against real_train (and real_holdout for the copy baseline)."""
    lim = limits or DatasetLimits()
    rng = np.random.default_rng(lim.seed)
    checks = integrity_checks(batch)
    tested: list[Tested] = []
    skipped: dict[str, str] = {}

    def add(name, stat, real, limit, p, detail="", gap=None):
        """A two-sided difference |stat - real| (stat alone for a distance) unless the gap is given."""
        if gap is None:
            gap = abs(stat - real) if real is not None else stat
        tested.append(Tested(name, stat, real, limit, p, gap, detail))

    if all(c.passed for c in checks):
        for child in batch.order:
            if batch.specs[child].parent is None:
                continue
            b, r = _Link(batch, child, rng), _Link(real_train, child, rng)
            ks = stats.ks_2samp(b.counts, r.counts)
            add(f"children_per_parent:{b.name}", float(ks.statistic), None, lim.max_count_ks, float(ks.pvalue),
                f"mean {b.counts.mean():.2f} vs real {r.counts.mean():.2f} children per parent")
            for pc in b.parent_cols:
                targets = [("count", b.counts, r.counts)] + [
                    (f"mean {c}", b.child_means[c], r.child_means[c]) for c in b.child_cols]
                for what, bv, rv in targets:
                    rb, nb = _spearman(b.parent_values[pc], bv)
                    rr, nr = _spearman(r.parent_values[pc], rv)
                    if min(nb, nr) >= lim.min_entities:
                        add(f"association:{b.name}:{pc}~{what}", rb, rr, lim.max_rho_gap, _fisher_p(rb, nb, rr, nr))
            for c in b.child_cols:
                rb, nb = _pearson(*b.sibling_pairs(c))
                rr, nr = _pearson(*r.sibling_pairs(c))
                if min(nb, nr) >= lim.min_entities:
                    add(f"sibling:{b.name}:{c}", rb, rr, lim.max_rho_gap, _fisher_p(rb, nb, rr, nr))
            if b.order_by:
                gb, gr = b.gaps(), r.gaps()
                if min(len(gb), len(gr)) >= lim.min_entities:
                    ks = stats.ks_2samp(gb, gr)
                    add(f"gap:{b.name}", float(ks.statistic), None, lim.max_ks, float(ks.pvalue))
                for c in b.child_cols:
                    for last in (False, True):
                        eb, er = b.ends(c, last), r.ends(c, last)
                        if min(len(eb), len(er)) >= lim.min_entities:
                            ks = stats.ks_2samp(eb, er)
                            add(f"{'last' if last else 'first'}:{b.name}:{c}", float(ks.statistic), None, lim.max_ks,
                                float(ks.pvalue))
                    for kind, fn, level in (("trend", _Link.trends, lim.max_trend_gap),
                                            ("smoothness", _Link.smoothness, lim.max_smoothness_gap)):
                        vb, vr = fn(b, c), fn(r, c)
                        if min(len(vb), len(vr)) >= lim.min_entities:
                            p = float(stats.ttest_ind(vb, vr, equal_var=False).pvalue)
                            add(f"{kind}:{b.name}:{c}", float(vb.mean()), float(vr.mean()), level, p)
        db, dt, dh = _entity_digests(batch), _entity_digests(real_train), _entity_digests(real_holdout)
        cb, ch = _copy_share(db, dt), _copy_share(dh, dt)
        p = float(stats.fisher_exact([[cb, len(db) - cb], [ch, len(dh) - ch]], alternative="greater").pvalue)
        add("entity_copy", cb / max(len(db), 1), ch / max(len(dh), 1), lim.max_copy_excess, p,
            f"{cb} of {len(db)} batch entities equal a real_train entity (real_holdout: {ch} of {len(dh)})",
            gap=cb / max(len(db), 1) - ch / max(len(dh), 1))
        tested += entity_privacy(entity_frame(batch), entity_frame(real_train), entity_frame(real_holdout),
                                 lim.privacy_entities, lim.reference_entities, lim.near_copy_distance,
                                 lim.max_memorised_share, lim.max_copy_excess, np.random.default_rng([lim.seed, 20]))
        utility = entity_utility(batch, real_train, real_holdout, lim.utility_entities, lim.utility_draws,
                                 lim.min_utility_entities, lim.min_utility_skill, lim.max_utility_drop, lim.seed)
        if utility.tested is None:
            skipped["entity_utility"] = utility.skipped
        else:
            tested.append(utility.tested)
    alpha = lim.false_refusal_rate / max(len(tested), 1)
    for t in tested:
        passed = not (t.gap > t.limit and t.p_value is not None and t.p_value < alpha)
        checks.append(Check(t.name, t.statistic, t.real, t.limit, t.p_value, passed, t.detail))
    return DatasetVerdict(all(c.passed for c in checks), alpha, checks, skipped)


def judge_tables(batch: Dataset, real_train: Dataset, real_holdout: Dataset, config: GateConfig | None = None
                 ) -> dict[str, Scorecard]:
    """Each table's flat scorecard (the flat gate unchanged), its key and foreign key columns left out."""
    config = config or GateConfig()
    out = {}
    for name in batch.order:
        target = batch.target[1] if batch.target and batch.target[0] == name else None
        out[name] = evaluate(batch.without_keys(name), real_train.without_keys(name), real_holdout.without_keys(name),
                             config, target=target)
    return out


@dataclass
class WholeVerdict:
    passed: bool
    links: DatasetVerdict
    tables: dict[str, Scorecard]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "links": self.links.to_dict(),
                "tables": {n: c.to_dict() for n, c in self.tables.items()}}


def table_gate(config: GateConfig, tables: int) -> GateConfig:
    """The gate of each table of a dataset of `tables` tables: its share of the false-refusal rate, the links
    taking one more equal share (`judge_whole`'s split; a table's contract is derived at it too)."""
    return config.model_copy(update={"false_refusal_rate": config.false_refusal_rate / (tables + 1)})


def judge_whole(batch: Dataset, real_train: Dataset, real_holdout: Dataset, config: GateConfig | None = None,
                limits: DatasetLimits | None = None) -> WholeVerdict:
    """Links and every table's own gate, the false-refusal rate shared equally among them (Bonferroni)."""
    per_table = table_gate(config or GateConfig(), len(batch.order))
    lim = limits or DatasetLimits()
    links = judge_dataset(batch, real_train, real_holdout,
                          DatasetLimits(**{**asdict(lim), "false_refusal_rate": per_table.false_refusal_rate}))
    tables = judge_tables(batch, real_train, real_holdout, per_table)
    return WholeVerdict(links.passed and all(c.passed for c in tables.values()), links, tables)
