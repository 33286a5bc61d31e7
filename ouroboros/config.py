"""The pipeline's one config file (`ouroboros.yaml`), typed and validated at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ouroboros.errors import ConfigError  # noqa: F401 - re-exported: defined in the leaf errors module
from ouroboros.images.config import ImageConfig

Policy = Literal["replace", "accumulate", "anchor"]
Mitigation = Literal["verify", "anchor", "refit"]
AUTO = "auto"  # a study family chosen by a bake-off on a validation split of real_train (ouroboros.chain.bakeoff)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TableConfig(_Strict):
    """One table of a dataset of several tables (`data.tables`; ouroboros/dataset.py, docs/relational.md)."""

    source: str = Field(description="CSV or parquet file of this table; relative paths are from the config file")
    key: str = Field(min_length=1, description="primary key column (unique, no nulls)")
    parent: str | None = Field(None, description="name of the parent table under data.tables")
    foreign_key: str | None = Field(None, description="column holding the parent's key; default: the parent's key "
                                    "column name")
    order_by: str | None = Field(None, description="orders this table's rows within each parent (a sequence)")


class TargetRef(_Strict):
    """`data.target` of a dataset of several tables: the table and its column the downstream model predicts."""

    table: str
    column: str


class DataConfig(_Strict):
    source: str | None = Field(None, description="CSV or parquet file with the real table; relative paths are from "
                               "the config file (images: an .npz with `images` and `labels`, a folder of PNGs, or "
                               "`sklearn:digits`). Required unless data.tables names several tables")
    tables: dict[str, TableConfig] | None = Field(None, description="a dataset of several linked tables "
                                                  "{name: {source, key, parent, foreign_key, order_by}} instead of "
                                                  "data.source (core only so far: docs/relational.md)")
    kind: Literal["table", "images"] = Field("table", description="table rows, or labelled grey images "
                                             "(ouroboros.images; docs/images.md)")
    target: str | TargetRef = Field(description="column the downstream model predicts; with data.tables: "
                                    "{table, column}")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    id_columns: list[str] = Field(default_factory=list, description="identifier columns: never modelled, "
                                  "regenerated as fresh unique values (columns unique per row are also detected)")
    key: str | list[str] | None = Field(None, description="column(s) whose value decides a row's side of the "
                                        "train/holdout split (rows sharing a key stay together); default: the "
                                        "row's whole content")

    @field_validator("key")
    @classmethod
    def _key_not_empty(cls, key: str | list[str] | None) -> str | list[str] | None:
        if key is not None and (not key or any(not k for k in ([key] if isinstance(key, str) else key))):
            raise ValueError("data.key must name at least one column (or be left out to hash the whole row)")
        return key

    @model_validator(mode="after")
    def _one_shape(self) -> DataConfig:
        if (self.source is None) == (self.tables is None):
            raise ValueError("data needs exactly one of source (one table) or tables (several linked tables)")
        if self.tables is not None:
            if not self.tables:
                raise ValueError("data.tables must name at least one table")
            if not isinstance(self.target, TargetRef):
                raise ValueError("with data.tables, data.target is {table: ..., column: ...}")
            if self.target.table not in self.tables:
                raise ValueError(f"data.target.table {self.target.table!r} is not one of data.tables "
                                 f"{sorted(self.tables)}")
            if self.kind != "table":
                raise ValueError("data.tables holds tables; data.kind must be 'table'")
            for name, t in self.tables.items():
                if t.parent is not None and t.parent not in self.tables:
                    raise ValueError(f"data.tables.{name}.parent {t.parent!r} is not one of data.tables "
                                     f"{sorted(self.tables)}")
        elif isinstance(self.target, TargetRef):
            raise ValueError("data.target {table, column} needs data.tables; with data.source name the column")
        return self

    def dataset_layout(self) -> tuple[dict[str, str], dict[str, dict], tuple[str, str]]:
        """(sources, specs as dicts, (target table, column)): a flat data.source reads as a dataset of one table
        named "table" keyed by data.key (when it is one column). Specs are plain dicts for
        `ouroboros.dataset.TableSpec(**spec)` (config imports nothing of the dataset modules)."""
        if self.tables is None:
            key = self.key if isinstance(self.key, str) else None
            return ({"table": self.source}, {"table": {"key": key, "parent": None, "foreign_key": None,
                                                       "order_by": None}}, ("table", self.target))
        sources = {n: t.source for n, t in self.tables.items()}
        specs = {n: t.model_dump(exclude={"source"}) for n, t in self.tables.items()}
        return sources, specs, (self.target.table, self.target.column)


class StudyConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="asset group and key prefix")
    family: str = Field(AUTO, description="generator family, or 'auto': a bake-off of candidate families on a "
                        "validation split carved from real_train picks one (real_holdout is never read to choose)")
    policy: Policy = "replace"
    generations: int = Field(3, ge=1, le=100)
    rows: int | None = Field(None, ge=1, description="rows per synthetic batch; default: as many as real_train")
    lam: float = Field(0.2, ge=0.0, le=1.0, description="anchor policy: fraction of fresh real rows in each pool")
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict, description="generator hyperparameters")
    budget_seconds: float = Field(120.0, gt=0, description="fit-time budget of one generation step (bake-off and "
                                  "repair attempts at generation 0, mitigation attempts later): it decides the "
                                  "epochs, the training rows (large tables are subsampled) and the candidates")
    candidates: list[str] = Field(default_factory=lambda: ["diffusion", "vae", "gan", "copula"],
                                  description="families the 'auto' bake-off tries, in this order of preference")
    mitigation: list[Mitigation] = Field(default_factory=list, description="generation k >= 1: what to try, in "
                                         "order, when the batch is refused (verify: keep the rows a real-vs-synthetic "
                                         "verifier selects; anchor: raise the real share; refit: another seed and "
                                         "more epochs); [] stops the chain at the first refusal")
    max_lam: float = Field(0.5, ge=0.0, le=1.0, description="mitigation 'anchor': the highest real share it may "
                           "raise a pool to")
    target_share: dict[str, float] | None = Field(None, description="rebalance the target: {class: share} of "
                                                  "every batch (e.g. {yes: 0.5}); unnamed classes share the rest "
                                                  "in their real proportions. The gate judges such a batch against "
                                                  "real rows stratified to the same mix (ouroboros/rebalance.py)")
    gate_mode: Literal["block", "observe"] = Field("block", description="observe: the gate scores every batch but "
                                                   "does not stop the chain (an unguarded chain, for comparison); "
                                                   "such batches never reach training_set or an approved alias")

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, candidates: list[str]) -> list[str]:
        if not candidates or AUTO in candidates:
            raise ValueError("candidates must name at least one generator family (and not 'auto')")
        return candidates

    @field_validator("mitigation")
    @classmethod
    def _mitigation_once_each(cls, mitigation: list[str]) -> list[str]:
        if len(set(mitigation)) != len(mitigation):
            raise ValueError(f"mitigation lists each of verify, anchor, refit at most once, got {mitigation}")
        return mitigation

    @model_validator(mode="after")
    def _anchor_can_raise(self) -> StudyConfig:
        if "anchor" in self.mitigation and self.policy == "anchor" and self.max_lam <= self.lam:
            raise ValueError(f"study {self.name!r}: mitigation 'anchor' raises the real share above lam "
                             f"({self.lam}) up to max_lam ({self.max_lam}); set max_lam above lam, or drop 'anchor'")
        if "verify" in self.mitigation and self.target_share:
            # the verifier's selection draws without conditions: it would undo the asked class mix
            raise ValueError(f"study {self.name!r}: mitigation 'verify' cannot keep target_share's class mix yet; "
                             "drop 'verify' from mitigation, or drop target_share")
        return self


class DownstreamConfig(_Strict):
    epochs: int = Field(10, ge=1)
    hidden: int = Field(64, ge=4)
    batch_size: int = Field(512, ge=8)
    learning_rate: float = Field(1e-3, gt=0)
    seed: int = 0


class GateConfig(_Strict):
    """The gate's rules. A blocking limit refuses a batch when it is worse than the threshold here (the effect
    that matters) AND worse than fresh real rows of its size plausibly score (a test at the false-refusal rate,
    shared over all tests of the batch). docs/gate.md lists every test and its null."""

    false_refusal_rate: float = Field(0.01, gt=0, lt=0.5, description="chance that a batch of fresh real rows is "
                                      "refused, for the batch as a whole (Bonferroni over all blocking tests)")
    contract_share: float = Field(0.1, gt=0, lt=1, description="share of the false-refusal rate spent by the Great "
                                  "Expectations contract; the scorecard's tests share the rest")
    spread_tolerance: float = Field(0.15, ge=0, description="contract: the spread rule's band, as the share a normal "
                                    "column's std may differ by, mapped to its 5/25/75/95% quantiles (or what fresh "
                                    "real rows of the batch's size show, if more)")
    range_mostly: float = Field(0.999, gt=0, le=1, description="contract: share of values that must lie in the real "
                                "range (lowered to what fresh real rows of the batch's size show, if less)")
    null_tolerance: float = Field(0.02, ge=0, le=1, description="allowed excess of a column's null share over "
                                  "real_train's")
    min_column_shape: float = Field(0.80, ge=0, le=1, description="per-column shape (1 - KS or 1 - TVD) below this "
                                    "is refused when the KS or chi-square test shows it beyond noise")
    max_exact_copy_rate: float = Field(0.0, ge=0, le=1, description="allowed excess share of rows that copy (or "
                                       "nearly copy) a real_train row over fresh real rows' share")
    min_category_survival: float = Field(0.9, ge=0, le=1, description="share of real categories a batch must keep")
    rare_category_share: float = Field(0.02, gt=0, lt=1, description="a real category below this share is rare")
    min_rare_category_survival: float = Field(0.8, ge=0, le=1, description="share of the rare real categories a "
                                              "batch must keep")
    min_association_retention: float = Field(0.4, ge=0, description="share of the real associations (Cramér's V "
                                             "of associated pairs), overall and per column, a batch must keep")
    association_min_v: float = Field(0.2, gt=0, le=1, description="real pairs with at least this Cramér's V count as "
                                     "associated")
    min_variance_ratio: float = Field(0.9, ge=0, description="lowest batch/real variance ratio of a numeric column, on the real data's rank-normal scale (collapse.spread_ratio; docs/gate.md)")
    max_variance_ratio: float = Field(1.25, ge=0, description="highest batch/real variance ratio of a numeric column, on the real data's rank-normal scale (collapse.spread_ratio)")
    min_tail_ratio: float = Field(0.5, ge=0, description="lowest share of the real tail mass (beyond the real 1%/99% "
                                  "quantiles) a numeric column must keep")
    max_closer_to_train_excess: float = Field(0.05, ge=0, le=1, description="allowed excess of the share of rows "
                                              "nearer to real_train than to real_holdout over fresh real rows' share")
    near_copy_distance: float = Field(0.05, gt=0, description="a row within this many real std per numeric column "
                                      "(RMS) of a real_train row, every category equal, is a near copy")
    max_mode_share: float = Field(0.05, ge=0, le=1, description="allowed excess share of the batch taken by one "
                                  "repeated row over that row's real_train share (mode collapse)")
    max_detection_auc: float = Field(0.7, ge=0.5, le=1, description="highest AUC of gradient-boosted trees telling "
                                     "synthetic from real rows")
    min_utility_retention: float = Field(0.5, description="lowest share of a real-trained model's skill a model "
                                         "trained on the batch must keep (tested on real_holdout; below 0: worse "
                                         "than predicting the commonest class or the mean)")
    min_pair_trend: float = Field(0.9, ge=0, le=1, description="mean pair-trend score below this (and 0.05 below "
                                  "fresh real rows') warns")
    # -- soft limits: breaches are reported as WARN and do not block --
    warn_detection_auc: float = Field(0.6, ge=0.5, le=1, description="classifier AUC that draws a warning")
    warn_quality_score: float = Field(0.85, ge=0, le=1, description="overall quality score that draws a warning")
    warn_max_tail_ratio: float = Field(3.0, ge=1, description="tail mass beyond this many times the real one warns")
    warn_wasserstein: float = Field(0.2, ge=0, description="Wasserstein distance per column, in real std units")
    warn_prdc_ratio: float = Field(0.75, ge=0, le=1, description="precision or coverage below this share of what "
                                   "fresh real rows score warns")
    warn_dcr_ratio: float = Field(0.5, ge=0, description="median distance to the closest real_train row below this "
                                  "share of fresh real rows' warns")
    warn_utility_gap: float = Field(0.05, ge=0, description="skill of the real-trained model minus the batch-trained "
                                    "one beyond this warns")
    # -- subsample sizes (reported in the scores) --
    knn_rows: int = Field(2000, ge=50, description="rows per side for precision/recall/density/coverage")
    privacy_rows: int = Field(1000, ge=50, description="batch rows (and holdout rows) whose distances to every "
                              "real_train row are measured")
    knn_k: int = Field(5, ge=1, description="k of precision/recall/density/coverage")
    detection_rows: int = Field(2000, ge=50, description="rows per side and part for the detection classifier")
    pair_rows: int = Field(200_000, ge=100, description="rows for pair trends")
    utility_rows: int = Field(2_000, ge=100, description="rows the utility models are fitted on")
    seed: int = Field(0, description="seed of every subsample and learner of the gate")
    # -- differential privacy (ouroboros.privacy) --
    max_epsilon: float | None = Field(None, gt=0, description="when set, refuse a batch whose chain of generators "
                                      "spent more than this ε on the real rows, or saw them without DP")


class TrainingConfig(_Strict):
    study: str | None = Field(None, description="study whose approved batches feed training; default: the first")
    generations: Literal["all", "latest"] = "all"
    champion_max_age_hours: float | None = Field(
        192, gt=0, description="freshness policy of downstream_champion: the champion model is overdue (Dagster "
        "marks it failing freshness) when it was last trained longer ago than this; the default, 8 days, is the "
        "weekly schedule plus a day. null: no policy")


class LandingConfig(_Strict):
    """How landed real-data files are checked before they may join the real table."""

    settle_seconds: float = Field(5.0, ge=0, description="a file must be this old, and unchanged across two "
                                                           "sensor ticks, before it is taken")
    null_tolerance: float = Field(0.05, ge=0, le=1, description="allowed absolute excess of a column's null share "
                                                                "over the first accepted data")
    range_slack: float = Field(0.5, ge=0, description="numeric values may exceed the first accepted range by this "
                                                      "share of its span on either side")
    extra_categories: dict[str, list[str]] = Field(default_factory=dict, description="categories declared valid "
                                                   "beyond those seen in the first accepted data, per column")
    null_values: list[str] = Field(default_factory=lambda: ["", "NA", "N/A", "n/a", "null", "NaN"],
                                   description="values of a landed CSV that read as null (the exact text)")
    max_decompressed_bytes: int = Field(2 * 1024**3, ge=1, description="most bytes the text of one landed CSV "
                                        "may take once decompressed (.csv.gz, .csv.zst; a plain .csv too), and "
                                        "most a parquet file may declare "
                                        "uncompressed; a file past it is quarantined as too_large (a "
                                        "decompression bomb would otherwise fill memory); default 2 GiB")
    max_attempts: int = Field(3, ge=1, description="times the sensor re-requests a file whose run ended with the "
                                                   "file still in landing (an interrupted ingest)")
    parent_wait_hours: float = Field(24, ge=0, description="data.tables only: how long a landed child file whose "
                                     "only fault is orphan rows (foreign keys with no parent row yet) stays in "
                                     "landing waiting for its parents, from when it was first seen. Producers "
                                     "often export tables separately, so a child file may arrive before its "
                                     "parents' file; a day covers a daily export landing out of order without "
                                     "letting a truly orphaned file sit unseen for long. After it the file is "
                                     "quarantined as orphan. 0: no wait")
    alert_webhook: str | None = Field(None, description="optional URL alerts are POSTed to as JSON; "
                                                        "OUROBOROS_ALERT_WEBHOOK overrides it")
    real_max_age_hours: float | None = Field(
        192, gt=0, description="freshness policy of real_data (the accepted real table as the pipeline last read "
        "it): Dagster marks it failing freshness when no run has read the table for longer than this. Every "
        "ouroboros_pipeline run (the weekly schedule) and every retrain after an accepted file reads it, so the "
        "default, 8 days, is the weekly schedule plus a day, as for the champion. null: no policy")


class AutomationConfig(_Strict):
    """Dagster declarative automation, opt-in (for a deployment whose daemon runs: bin/ui, the stack, k8s)."""

    chain: Literal["off", "eager"] = Field("off", description="eager: every generator and batch of every chain "
                                           "carries AutomationCondition.eager() (& all_deps_blocking_checks_passed "
                                           "under gate_mode: block), and default_automation_condition_sensor (stopped "
                                           "until turned on) makes the next generation when its parent batch is new "
                                           "and approved by the gate. off (default): only the jobs, schedule and "
                                           "sensors run the chain")

    @field_validator("chain", mode="before")
    @classmethod
    def _yaml_off(cls, chain: Any) -> Any:
        return "off" if chain is False else chain  # YAML 1.1 reads a bare `off` as false


class PipelineConfig(_Strict):
    data: DataConfig
    studies: list[StudyConfig] = Field(default_factory=lambda: [StudyConfig(name="copula_replace", family="copula")])
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    downstream: DownstreamConfig = Field(default_factory=DownstreamConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    landing: LandingConfig = Field(default_factory=LandingConfig)
    automation: AutomationConfig = Field(default_factory=AutomationConfig)
    images: ImageConfig = Field(default_factory=ImageConfig, description="image studies (data.kind: images)")

    @field_validator("studies")
    @classmethod
    def _unique_names(cls, studies: list[StudyConfig]) -> list[StudyConfig]:
        names = [s.name for s in studies]
        if len(set(names)) != len(names):
            raise ValueError(f"study names must be unique, got {names}")
        if not studies:
            raise ValueError("at least one study is needed")
        return studies

    @model_validator(mode="after")
    def _training_study_exists(self) -> PipelineConfig:
        names = [s.name for s in self.studies]
        if self.training.study is None:
            # an observe-mode study's batches never feed training: default to the first study whose gate blocks
            self.training.study = next((s.name for s in self.studies if s.gate_mode == "block"), names[0])
        elif self.training.study not in names:
            raise ValueError(f"training.study {self.training.study!r} is not one of the studies {names}")
        elif self.study(self.training.study).gate_mode == "observe":
            raise ValueError(f"training.study {self.training.study!r} has gate_mode: observe: its batches never "
                             "feed training; name a study whose gate blocks (gate_mode: block)")
        return self

    def study(self, name: str) -> StudyConfig:
        return next(s for s in self.studies if s.name == name)


def load_config(path: str | Path) -> PipelineConfig:
    """Read and validate the YAML config; `data.source` is resolved relative to the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found (set OUROBOROS_CONFIG or create it)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid config:\n  " + "\n  ".join(lines)) from exc
    if config.data.source is not None:
        source = Path(config.data.source)
        if not source.is_absolute() and not config.data.source.startswith("sklearn:"):  # built-in image sets
            config.data.source = str((path.parent / source).resolve())
    for table in (config.data.tables or {}).values():
        if not Path(table.source).is_absolute():
            table.source = str((path.parent / table.source).resolve())
    return config
