"""Scores of a synthetic batch against the real data, and the pass/fail verdict they imply.

`evaluate` runs every family of scores (fidelity, joint fidelity/diversity, privacy, utility, collapse),
returns them flat in `scores` (with noise floors and subsample sizes), and turns the configured limits into
`failures` (blocking) and `warnings` (soft limits, reported but not blocking). Each limit is widened to the
band fresh real data of the same size shows, so sampling noise alone never blocks a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from ouroboros.config import GateConfig
from ouroboros.identifiers import gate_view
from ouroboros.quality import collapse as col_ind
from ouroboros.quality.encoding import Encoder, numeric_values
from ouroboros.quality.fidelity import NUMERIC_KINDS, column_shape, cramers_v, pair_trends
from ouroboros.quality.learners import detection_auc, linear_utility
from ouroboros.quality.neighbours import closer_to_train_share, knn_dists, prdc, privacy_distances
from ouroboros.schema import ColumnKind, TableSchema

CHECKS = ("contract", "fidelity", "privacy", "collapse")


@dataclass(frozen=True)
class Failure:
    check: str  # the Dagster check that owns it: contract, fidelity, privacy, collapse
    indicator: str
    value: float
    threshold: float
    reason: str
    severity: str = "error"  # "error" blocks the batch; "warn" is a soft limit, reported only


@dataclass
class Scorecard:
    passed: bool
    failures: list[Failure] = field(default_factory=list)  # blocking breaches only
    scores: dict[str, float] = field(default_factory=dict)
    warnings: list[Failure] = field(default_factory=list)  # soft-limit breaches

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": [asdict(f) for f in self.failures], "scores": self.scores,
                "warnings": [asdict(f) for f in self.warnings]}

    @classmethod
    def from_dict(cls, d: dict) -> Scorecard:
        return cls(passed=d["passed"], failures=[Failure(**f) for f in d["failures"]], scores=d["scores"],
                   warnings=[Failure(**f) for f in d.get("warnings", [])])

    def failures_for(self, check: str) -> list[Failure]:
        return [f for f in self.failures if f.check == check]

    def warnings_for(self, check: str) -> list[Failure]:
        return [f for f in self.warnings if f.check == check]

    def scores_for(self, check: str) -> dict[str, float]:
        """The scores a check owns: fidelity also owns per-column shapes, joint and utility scores."""
        prefixes = {"fidelity": ("fidelity.", "shape.", "joint.", "utility."), "privacy": ("privacy.",),
                    "collapse": ("collapse.",), "contract": ("contract.",)}[check]
        return {k: v for k, v in self.scores.items() if k.startswith(prefixes)}


def exact_copy_rate(rows: pl.DataFrame, reference: pl.DataFrame) -> float:
    """Share of `rows` that equal some row of `reference` in every column."""
    if rows.height == 0:
        return 0.0
    keys = reference.unique()
    return rows.join(keys, on=rows.columns, how="semi", nulls_equal=True).height / rows.height


def _sample(df: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    return df if df.height <= n else df.sample(n=n, seed=seed)


class _Judge:
    """Collects scores, failures and warnings while `evaluate` runs."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}
        self.failures: list[Failure] = []
        self.warnings: list[Failure] = []

    def below(self, check: str, key: str, limit: float, reason: str, warn: bool = False) -> None:
        value = self.scores.get(key)
        if value is not None and np.isfinite(value) and value < limit:
            self._add(check, key, value, limit, reason, warn)

    def above(self, check: str, key: str, limit: float, reason: str, warn: bool = False) -> None:
        value = self.scores.get(key)
        if value is not None and np.isfinite(value) and value > limit:
            self._add(check, key, value, limit, reason, warn)

    def _add(self, check, key, value, limit, reason, warn) -> None:
        f = Failure(check, key.split(".", 1)[1] if key.startswith("collapse.") else key, float(value), float(limit),
                    reason, "warn" if warn else "error")
        (self.warnings if warn else self.failures).append(f)


def evaluate(
    synthetic: pl.DataFrame,
    real_train: pl.DataFrame,
    real_holdout: pl.DataFrame,
    config: GateConfig | None = None,
    schema: TableSchema | None = None,
    target: str | None = None,
    id_columns: Sequence[str] = (),
) -> Scorecard:
    """Score a batch on fidelity, diversity, privacy, utility (with a `target`) and collapse indicators;
    `passed` says whether it may feed training. Identifier and free-text columns are left out."""
    config = config or GateConfig()
    synthetic, real_train, real_holdout, schema = gate_view(synthetic, real_train, real_holdout, schema, id_columns)
    if synthetic.columns != schema.names:
        f = Failure("contract", "columns", 0.0, 1.0, f"batch columns {synthetic.columns} != real {schema.names}")
        return Scorecard(passed=False, failures=[f], scores={})
    j = _Judge()
    if not _schema(j, synthetic, schema, config):
        return Scorecard(passed=False, failures=j.failures, scores=j.scores)
    holdout = real_holdout if real_holdout.height >= 2 else None
    _columns(j, synthetic, real_train, holdout, schema, config)
    if synthetic.height >= 2:
        encoder = Encoder.fit(real_train, schema)
        _pairs(j, synthetic, real_train, holdout, schema, encoder, config)
        _privacy(j, synthetic, real_train, real_holdout, encoder, config)
        _joint(j, synthetic, real_train, holdout, encoder, config)
        if target is not None and target in schema.names:
            _utility(j, synthetic, real_train, holdout, schema, target, config)
    else:
        j._add("fidelity", "rows", float(synthetic.height), 2.0, "the batch has fewer than 2 rows", False)
    return Scorecard(passed=not j.failures, failures=j.failures, scores=j.scores, warnings=j.warnings)


# -- schema: the contract's core, so the gate holds without Great Expectations too ----------------------

def _schema(j: _Judge, syn: pl.DataFrame, schema: TableSchema, config: GateConfig) -> bool:
    """Types, unknown categories and nulls; False when a dtype is wrong (nothing else can be scored)."""
    wrong = [(spec.name, str(syn[spec.name].dtype), spec.dtype) for spec in schema.columns
             if str(syn[spec.name].dtype) != spec.dtype]
    for name, got, want in wrong:
        j._add("contract", f"dtype.{name}", 0.0, 1.0, f"{name} has dtype {got}, the real data has {want}", False)
    for spec in schema.columns:
        s = syn[spec.name]
        nulls = s.null_count() / max(syn.height, 1)
        j.scores[f"contract.null_share.{spec.name}"] = nulls
        limit = spec.null_fraction + config.null_tolerance if spec.null_fraction > 0 else 0.0
        if nulls > limit:
            j._add("contract", f"nulls.{spec.name}", nulls, limit,
                   f"{spec.name} has {nulls:.2%} nulls (real: {spec.null_fraction:.2%})", False)
        if spec.kind == ColumnKind.CATEGORICAL and spec.name not in {w[0] for w in wrong}:
            seen = s.cast(pl.String).drop_nulls().unique().sort()
            unknown = seen.filter(~seen.is_in(list(spec.categories)))
            j.scores[f"contract.unknown_categories.{spec.name}"] = float(len(unknown))
            if len(unknown):
                j._add("contract", f"categories.{spec.name}", float(len(unknown)), 0.0,
                       f"{spec.name} has categories the real data never showed: {unknown.head(5).to_list()}", False)
    return not wrong


# -- per column: shapes and collapse indicators --------------------------------------------------------

def _columns(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None,
             schema: TableSchema, config: GateConfig) -> None:
    shapes = []
    collapse_keys: list[tuple[str, str]] = []
    for spec in schema.columns:
        name = spec.name
        if spec.kind in (ColumnKind.CONTINUOUS, ColumnKind.INTEGER):
            r, s = numeric_values(train[name]), numeric_values(syn[name])
            h = numeric_values(holdout[name]) if holdout is not None else None
            ind = col_ind.numeric_indicators(r[~np.isnan(r)], s[~np.isnan(s)], None if h is None else h[~np.isnan(h)])
            shape = ind.pop("shape")
            if "shape.noise_floor" in ind:
                j.scores[f"shape.{name}.noise_floor"] = ind.pop("shape.noise_floor")
            for k, v in ind.items():
                base, _, suffix = k.partition(".")
                j.scores[f"collapse.{base}.{name}" + (f".{suffix}" if suffix else "")] = v
            collapse_keys.append(("numeric", name))
        else:
            shape = column_shape(train[name], syn[name], spec.kind)
            if holdout is not None:
                j.scores[f"shape.{name}.noise_floor"] = column_shape(train[name], holdout[name], spec.kind)
            if spec.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
                for k, v in col_ind.survival(train[name], syn[name], config.rare_category_share).items():
                    base, _, suffix = k.partition(".")
                    if suffix == "count":
                        j.scores[f"collapse.{base.replace('survival', 'count')}.{name}"] = v
                    else:
                        j.scores[f"collapse.{base}.{name}" + (f".{suffix}" if suffix else "")] = v
                collapse_keys.append(("categorical", name))
        j.scores[f"shape.{name}"] = shape
        shapes.append(shape)
        j.below("fidelity", f"shape.{name}", config.min_column_shape,
                f"the distribution of {name} differs from the real one (shape {shape:.3f})")
    j.scores["fidelity.column_shapes"] = float(np.mean(shapes))
    floors = [v for k, v in j.scores.items() if k.startswith("shape.") and k.endswith(".noise_floor")]
    if floors:
        j.scores["fidelity.column_shapes.noise_floor"] = float(np.mean(floors))

    s = j.scores
    for kind, name in collapse_keys:
        if kind == "numeric":
            vr = f"collapse.variance_ratio.{name}"
            if vr in s:
                lo = min(config.min_variance_ratio, s[vr + ".noise_low"])
                hi = max(config.max_variance_ratio, s[vr + ".noise_high"])
                j.below("collapse", vr, lo, f"{name} lost spread: variance {s[vr]:.2f}x the real one "
                                            f"(real samples of this size: {s[vr + '.noise_low']:.2f}x or more)")
                j.above("collapse", vr, hi, f"{name} spread blew up: variance {s[vr]:.2f}x the real one")
            tm = f"collapse.tail_mass.{name}"
            real_tail = s.get(tm + ".noise_floor", 0.0)
            if real_tail * syn.height >= 5:  # fewer expected tail rows than that cannot show a loss
                lo = min(config.min_tail_ratio * real_tail, s[tm + ".noise_low"])
                j.below("collapse", tm, lo, f"{name} lost its tails: {s[tm]:.2%} of rows beyond the real 1%/99% "
                                            f"quantiles (real: {real_tail:.2%})")
                hi = max(config.warn_max_tail_ratio * real_tail, s[tm + ".noise_high"])
                j.above("collapse", tm, hi, f"{name} has heavier tails than real: {s[tm]:.2%} beyond the real "
                                            f"1%/99% quantiles (real: {real_tail:.2%})", warn=True)
            w = f"collapse.wasserstein.{name}"
            if w in s:
                lim = max(config.warn_wasserstein, 3 * s.get(w + ".noise_floor", 0.0))
                j.above("collapse", w, lim, f"{name} moved {s[w]:.3f} real std (Wasserstein) from the real data",
                        warn=True)
        else:
            cs = f"collapse.category_survival.{name}"
            if cs in s:
                lo = min(config.min_category_survival, s[cs + ".noise_low"])
                j.below("collapse", cs, lo, f"{name} kept only {s[cs]:.0%} of its real categories "
                                            f"(a real sample of this size keeps {s[cs + '.noise_floor']:.0%})")
            rs = f"collapse.rare_category_survival.{name}"
            if rs in s:
                lo = min(config.min_rare_category_survival, s[rs + ".noise_low"])
                j.below("collapse", rs, lo, f"{name} kept only {s[rs]:.0%} of its rare real categories "
                                            f"(a real sample of this size keeps {s[rs + '.noise_floor']:.0%})")
    for family in ("variance_ratio", "category_survival", "rare_category_survival", "tail_mass", "wasserstein"):
        values = [v for k, v in s.items() if k.startswith(f"collapse.{family}.") and k.count(".") == 2]
        if values:
            s[f"collapse.{family}_{'min' if family.endswith(('ratio', 'survival')) else 'max'}"] = float(
                min(values) if family.endswith(("ratio", "survival")) else max(values))


# -- pairs: correlation and contingency similarity; overall quality ---------------------------------------

def _pairs(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None, schema: TableSchema,
           encoder: Encoder, config: GateConfig) -> None:
    kinds = {c.name: c.kind for c in schema.columns}
    train_s = _sample(train, config.pair_rows, config.seed)
    syn_s = _sample(syn, config.pair_rows, config.seed + 1)
    trends = pair_trends(train_s, syn_s, encoder, kinds)
    j.scores["fidelity.pair_trends.rows"] = float(syn_s.height)
    if not trends:
        j.scores["fidelity.quality_score"] = j.scores["fidelity.column_shapes"]
        return
    floors = pair_trends(train_s, holdout, encoder, kinds) if holdout is not None else {}
    for (a, b), v in trends.items():
        j.scores[f"fidelity.pair.{a}|{b}"] = v
        if (a, b) in floors:
            j.scores[f"fidelity.pair.{a}|{b}.noise_floor"] = floors[(a, b)]
    j.scores["fidelity.pair_trends"] = float(np.mean(list(trends.values())))
    worst = min(trends, key=trends.get)
    j.scores["fidelity.pair_trends_min"] = trends[worst]
    if floors:
        j.scores["fidelity.pair_trends.noise_floor"] = float(np.mean(list(floors.values())))
    j.scores["fidelity.quality_score"] = (j.scores["fidelity.column_shapes"] + j.scores["fidelity.pair_trends"]) / 2
    # the mean pair trend warns when below the limit and further below what fresh real rows score than noise
    # explains; single pairs are scored (and listed on the scorecard page) but do not warn on their own
    floor = j.scores.get("fidelity.pair_trends.noise_floor", 1.0)
    j.below("fidelity", "fidelity.pair_trends", min(config.min_pair_trend, floor - 0.05),
            f"pair trends {j.scores['fidelity.pair_trends']:.3f} against {floor:.3f} for fresh real rows; weakest "
            f"pair {worst[0]}|{worst[1]} at {trends[worst]:.3f}", warn=True)
    # the joint as a whole: how much of the real associations (Cramér's V of the clearly associated pairs) survive
    real_v = cramers_v(train_s, encoder, list(trends))
    strong = [p for p, v in real_v.items() if v >= config.association_min_v]
    j.scores["fidelity.associated_pairs"] = float(len(strong))
    if strong:
        total = sum(real_v[p] for p in strong)
        syn_v = cramers_v(syn_s, encoder, strong)
        j.scores["fidelity.association_retention"] = sum(syn_v.values()) / total
        if holdout is not None and holdout.height >= 10:
            j.scores["fidelity.association_retention.noise_floor"] = sum(
                cramers_v(holdout, encoder, strong).values()) / total
        j.below("fidelity", "fidelity.association_retention", config.min_association_retention,
                f"the batch keeps only {j.scores['fidelity.association_retention']:.0%} of the associations between "
                f"columns ({len(strong)} clearly associated real pairs, Cramér's V): marginals may be right but the "
                "joint distribution is not")
    j.below("fidelity", "fidelity.quality_score", config.warn_quality_score,
            f"overall quality score {j.scores['fidelity.quality_score']:.3f} (mean of column shapes and pair trends)",
            warn=True)


# -- privacy ------------------------------------------------------------------------------------------------

def _privacy(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame, encoder: Encoder,
             config: GateConfig) -> None:
    copy_rate = exact_copy_rate(syn, train)
    # fresh real rows can coincide with training rows in a table of few distinct values: that rate is no leak
    baseline = exact_copy_rate(holdout, train) if holdout.height else 0.0
    # noise of both rates (binomial): two real samples of these sizes differ by this much by chance
    noise = 3 * np.sqrt(baseline * (1 - baseline) * (1 / max(syn.height, 1) + 1 / max(holdout.height, 1)))
    allowed = max(config.max_exact_copy_rate, baseline * 1.5, baseline + noise)
    j.scores.update({"privacy.exact_copy_rate": copy_rate, "privacy.exact_copy_rate_real_baseline": baseline,
                     "privacy.exact_copy_rate.noise_floor": baseline,
                     "privacy.exact_copy_rate.noise_high": baseline + noise})
    if copy_rate > allowed:
        j._add("privacy", "exact_copy_rate", copy_rate, allowed,
               f"{copy_rate:.2%} of synthetic rows copy a real_train row (fresh real rows: {baseline:.2%})", False)
    m = min(config.knn_rows, holdout.height, train.height)
    if m < 10:
        return
    rng_seed = config.seed + 2
    t = encoder.matrix(_sample(train, m, rng_seed))
    h_frame = _sample(holdout, m, rng_seed + 1)
    h = encoder.matrix(h_frame)
    f = encoder.matrix(_sample(syn, config.knn_rows, rng_seed + 2))
    d = privacy_distances(f, t, h)
    # fresh real rows against the same train sample: what an honest batch's distances look like
    base = privacy_distances(h, t, t)  # only dcr and nndr of the baseline are used
    share = closer_to_train_share(d["dcr"], d["dcr_holdout"])
    noise = 3 * np.sqrt(0.25 / len(f))
    real_median = float(np.median(base["dcr"]))
    j.scores.update({
        "privacy.rows": float(len(f)), "privacy.reference_rows": float(m),
        "privacy.closer_to_train_share": share, "privacy.closer_to_train_share.noise_low": 0.5 - noise,
        "privacy.closer_to_train_share.noise_high": 0.5 + noise,
        "privacy.dcr.median": float(np.median(d["dcr"])), "privacy.dcr.p05": float(np.quantile(d["dcr"], 0.05)),
        "privacy.dcr.median.noise_floor": real_median,
        "privacy.dcr.p05.noise_floor": float(np.quantile(base["dcr"], 0.05)),
        "privacy.dcr_ratio": float(np.median(d["dcr"]) / real_median) if real_median > 0 else 1.0,
        "privacy.nndr.mean": float(np.mean(d["nndr"])), "privacy.nndr.mean.noise_floor": float(np.mean(base["nndr"])),
    })
    # near copies: rows within a small distance of some real_train row (copies with a little noise added slip
    # past the exact-match join), against how often fresh real rows sit that close
    ref = _sample(train, config.privacy_reference_rows, rng_seed + 3)
    r = encoder.matrix(ref)
    near = float((knn_dists(f, r, 1)[:, 0] < config.near_copy_distance).mean())
    near_base = float((knn_dists(h, r, 1)[:, 0] < config.near_copy_distance).mean())
    near_noise = 3 * np.sqrt(near_base * (1 - near_base) * (1 / len(f) + 1 / len(h)))
    near_allowed = max(config.max_exact_copy_rate, near_base * 1.5, near_base + near_noise)
    j.scores.update({"privacy.near_copy_rate": near, "privacy.near_copy_rate.noise_floor": near_base,
                     "privacy.near_copy_rate.noise_high": near_base + near_noise,
                     "privacy.near_copy_reference_rows": float(ref.height)})
    j.above("privacy", "privacy.near_copy_rate", near_allowed,
            f"{near:.2%} of synthetic rows lie within {config.near_copy_distance} (standardised units) of a real_train "
            f"row (fresh real rows: {near_base:.2%}): near copies")
    j.above("privacy", "privacy.closer_to_train_share", max(config.max_closer_to_train_share, 0.5 + noise),
            f"{share:.0%} of synthetic rows are nearer to real_train than to real_holdout (healthy: about 50%): "
            "the generator reproduces its training rows")
    if real_median > 0:
        j.below("privacy", "privacy.dcr_ratio", config.warn_dcr_ratio,
                f"synthetic rows sit closer to real_train rows than fresh real rows do "
                f"(median DCR {j.scores['privacy.dcr.median']:.3g} vs {real_median:.3g})", warn=True)


# -- joint fidelity and diversity -----------------------------------------------------------------------

def _joint(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None, encoder: Encoder,
           config: GateConfig) -> None:
    seed = config.seed + 10
    m = min(config.knn_rows, train.height, syn.height)
    k = min(config.knn_k, m - 1)
    if m < 10 or k < 1:
        return
    real = encoder.matrix(_sample(train, m, seed))
    fake = encoder.matrix(_sample(syn, m, seed + 1))
    j.scores["joint.rows"] = float(m)
    j.scores["joint.k"] = float(k)
    for name, v in prdc(real, fake, k).items():
        j.scores[f"joint.{name}"] = v
    if holdout is not None and holdout.height >= 10:
        # fresh real rows against the same real sample: PRDC of an honest batch of this size
        h = encoder.matrix(_sample(holdout, m, seed + 2))
        for name, v in prdc(real, h, min(k, len(h) - 1)).items():
            j.scores[f"joint.{name}.noise_floor"] = v
        for name in ("precision", "coverage"):
            floor = j.scores[f"joint.{name}.noise_floor"]
            j.below("fidelity", f"joint.{name}", config.warn_prdc_ratio * floor,
                    f"{name} {j.scores[f'joint.{name}']:.2f} against {floor:.2f} for fresh real rows "
                    f"({'realism' if name == 'precision' else 'diversity'} lost)", warn=True)
        _detection(j, syn, train, holdout, encoder, config)


def _detection(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame, encoder: Encoder,
               config: GateConfig) -> None:
    seed = config.seed + 20
    m = min(config.detection_rows, holdout.height, syn.height // 2, train.height)
    if m < 10:
        return
    fake = _sample(syn, 2 * m, seed)
    fake_fit, fake_test = encoder.matrix(fake[:m]), encoder.matrix(fake[m:2 * m])
    real_fit = encoder.matrix(_sample(train, m, seed + 1))
    real_test = encoder.matrix(_sample(holdout, m, seed + 2))
    value = detection_auc(real_fit, fake_fit, real_test, fake_test, seed=config.seed)
    noise = 3 * np.sqrt((2 * m + 1) / (12 * m * m))  # sd of the AUC of a classifier that knows nothing
    j.scores.update({"joint.detection_auc": value, "joint.detection_auc.noise_high": 0.5 + noise,
                     "joint.detection_auc.noise_low": 0.5 - noise, "joint.detection_rows": float(m)})
    j.above("fidelity", "joint.detection_auc", max(config.max_detection_auc, 0.5 + noise),
            f"a classifier tells synthetic from real rows with AUC {value:.2f} (0.5: indistinguishable)")
    j.above("fidelity", "joint.detection_auc", max(config.warn_detection_auc, 0.5 + noise),
            f"a classifier tells synthetic from real rows with AUC {value:.2f} (0.5: indistinguishable)", warn=True)


# -- utility --------------------------------------------------------------------------------------------

def _utility(j: _Judge, syn: pl.DataFrame, train: pl.DataFrame, holdout: pl.DataFrame | None, schema: TableSchema,
             target: str, config: GateConfig) -> None:
    if holdout is None or holdout.height < 10:
        return
    spec = schema.column(target)
    encoder = Encoder.fit(train, schema, exclude=(target,))
    frames = {name: _sample(df.filter(pl.col(target).is_not_null()), config.utility_rows, config.seed + 30 + i)
              for i, (name, df) in enumerate((("syn", syn), ("train", train), ("test", holdout)))}
    if min(f.height for f in frames.values()) < 10:
        return
    if spec.kind in (ColumnKind.CATEGORICAL, ColumnKind.BOOLEAN):
        classes = list(spec.categories)
        lookup = pl.DataFrame({"v": classes, "i": np.arange(len(classes), dtype=np.int64)})

        def y(df: pl.DataFrame) -> np.ndarray:
            return (df[target].cast(pl.String).alias("v").to_frame().join(lookup, on="v", how="left",
                                                                         maintain_order="left")["i"]
                    .fill_null(0).to_numpy())
        n_classes = len(classes)
        metrics, headline = ("accuracy", "log_loss"), "accuracy"
    elif spec.kind in NUMERIC_KINDS:
        def y(df: pl.DataFrame) -> np.ndarray:
            return numeric_values(df[target])
        n_classes = None
        metrics, headline = ("rmse", "r2"), "r2"
    else:
        return
    x_test, y_test = encoder.matrix(frames["test"]), y(frames["test"])
    tstr = linear_utility(encoder.matrix(frames["syn"]), y(frames["syn"]), x_test, y_test, n_classes, config.seed)
    trtr = linear_utility(encoder.matrix(frames["train"]), y(frames["train"]), x_test, y_test, n_classes, config.seed)
    for name in metrics:
        j.scores[f"utility.tstr.{name}"] = tstr[name]
        j.scores[f"utility.trtr.{name}"] = trtr[name]
    j.scores["utility.rows"] = float(frames["syn"].height)
    gap = trtr[headline] - tstr[headline]
    j.scores[f"utility.{headline}_gap"] = gap
    if n_classes:
        j.scores["utility.log_loss_gap"] = tstr["log_loss"] - trtr["log_loss"]
    j.above("fidelity", f"utility.{headline}_gap", config.warn_utility_gap,
            f"a model trained on the batch scores {gap:.3f} {headline} below one trained on real rows "
            "(tested on real_holdout)", warn=True)
