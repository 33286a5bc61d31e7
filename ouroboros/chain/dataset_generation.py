"""One generation of a chain over a dataset of several tables, framework-free: the policy's pool of entities, the
fit, and the batch.

The flat chain's rule, with entities (a root row and all its descendants) where the flat chain has rows:

- the pool: `ouroboros.policies.plan_pool` decides it over root entity counts exactly as over rows (replace: the
  previous batch; accumulate: real_train and every earlier batch; anchor: a share `lam` of real entities, the rest
  from the previous batch), and whole entities are taken from each source. Keys are made unique across sources
  (each table's keys renumbered per source, foreign keys following), since two batches both number their
  entities 0..n-1;
- the fit: a `DatasetGenerator` (ouroboros.generators.children) of the study's family, seeded as the flat step;
- the batch: `study.rows` root entities (default: as many as real_train has), drawn with the flat step's batch
  seed offset.

The dataset's own gate (`ouroboros.quality.gate_dataset.judge_whole`) judges the batch; this module never gates.
`family: auto`, the budget, repair and mitigation belong to the flat step and are not applied to datasets.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ouroboros.chain.step import BATCH_SEED_OFFSET, step_seed
from ouroboros.config import AUTO, StudyConfig
from ouroboros.dataset import Dataset
from ouroboros.errors import GeneratorError
from ouroboros.generators.children import DatasetGenerator
from ouroboros.policies import plan_pool, source_name


@dataclass(frozen=True)
class DatasetPool:
    dataset: Dataset  # what the generator learns from, keys unique across sources
    composition: dict[str, int]  # source ("real" or "gen_<j>") -> root entities taken from it


@dataclass
class DatasetGeneration:
    pool: DatasetPool
    generator: DatasetGenerator
    seed: int
    fit_seconds: float


def entities(ds: Dataset, root_index: np.ndarray | None) -> dict[str, pl.DataFrame]:
    """The tables of the entities whose root rows are at `root_index` (None: all), every descendant included."""
    out: dict[str, pl.DataFrame] = {}
    for name in ds.order:
        spec, df = ds.specs[name], ds.tables[name]
        if spec.parent is None:
            out[name] = df if root_index is None else df[root_index.tolist()]
        else:
            pk = ds.specs[spec.parent].key
            fk = ds.foreign_key(name)
            keep = out[spec.parent].select(pl.col(pk).alias(fk))
            out[name] = df.join(keep, on=fk, how="semi", maintain_order="left")
    return out


def _renumbered(ds: Dataset, tables: dict[str, pl.DataFrame], offsets: dict[str, int]) -> dict[str, pl.DataFrame]:
    """Each table's primary key replaced by offset + its row number, foreign keys mapped the same way."""
    out, maps = {}, {}
    for name in ds.order:
        spec, df = ds.specs[name], tables[name]
        if spec.key is not None:
            new = pl.int_range(offsets[name], offsets[name] + df.height, dtype=pl.Int64, eager=True)
            maps[name] = pl.DataFrame({"__old": df[spec.key], "__new": new})
            df = df.with_columns(new.alias(spec.key))
        if spec.parent is not None:
            fk = ds.foreign_key(name)
            lookup = maps[spec.parent].rename({"__old": fk})
            df = (df.join(lookup, on=fk, how="left", maintain_order="left")
                  .with_columns(pl.col("__new").alias(fk)).drop("__new"))
        out[name] = df
    return out


def build_dataset_pool(policy: str, generation: int, real_train: Dataset | None, batches: Sequence[Dataset | None],
                       lam: float = 0.2, seed: int = 0) -> DatasetPool:
    """Training pool of `generation`: whole entities of each source per the policy (`plan_pool`'s plan)."""
    root = (real_train or next(b for b in batches if b is not None)).roots()[0]
    real_n = real_train.tables[root].height if real_train is not None else 0
    sizes = [b.tables[root].height if b is not None else 0 for b in batches[:generation]]
    plan = plan_pool(policy, generation, real_n, sizes, lam, seed)
    sources = {"real": real_train} | {source_name(j): b for j, b in enumerate(batches)}
    parts = [(s, sources[s], idx) for s, idx in plan.parts if plan.composition[s] or len(plan.parts) == 1]
    if len(parts) == 1 and parts[0][2] is None:
        return DatasetPool(parts[0][1], plan.composition)  # one whole source: its own keys are unique already
    offsets = {name: 0 for name in parts[0][1].order}
    pooled: dict[str, list[pl.DataFrame]] = {name: [] for name in offsets}
    for s, ds, idx in parts:
        if ds is None:
            raise GeneratorError(f"generation {generation} ({policy}) needs {s}, which was not given")
        renum = _renumbered(ds, entities(ds, idx), offsets)
        for name, df in renum.items():
            pooled[name].append(df)
            offsets[name] += df.height
    spec_source = parts[0][1]
    tables = {n: pl.concat(frames, how="vertical_relaxed") for n, frames in pooled.items()}
    return DatasetPool(spec_source.replace(tables), plan.composition)


def dataset_family(study: StudyConfig) -> str:
    """The family a dataset study fits; `auto` is refused with what to write instead (its bake-off is flat)."""
    if study.family == AUTO:
        raise GeneratorError(f"study {study.name!r}: family auto chooses among flat generators by a bake-off that "
                             "does not cover datasets of several tables yet; name the family (copula, vae, gan or "
                             "diffusion; docs/relational.md compares them)")
    return study.family


def fit_dataset_generation(study: StudyConfig, generation: int, real_train: Dataset | None,
                           batches: Sequence[Dataset | None]) -> DatasetGeneration:
    """Fit generation `generation` of `study` on its pool; `batches[j]` is generation j's approved batch (None for
    a generation this policy does not read)."""
    pool = build_dataset_pool(study.policy, generation, real_train, batches, lam=study.lam, seed=study.seed)
    seed = step_seed(study, generation)
    started = time.perf_counter()
    generator = DatasetGenerator(dataset_family(study), dict(study.params), seed=seed).fit(pool.dataset)
    if real_train is not None:
        # fresh keys take real's key type (a pool of several sources is renumbered as integers)
        generator.pk_dtype = real_train.tables[generator.root].schema[real_train.specs[generator.root].key]
    return DatasetGeneration(pool, generator, seed, time.perf_counter() - started)


def batch_entities(study: StudyConfig, real_train_entities: int) -> int:
    """Root entities per batch: `study.rows`, or as many as real_train has."""
    return study.rows or real_train_entities


def draw_dataset_batch(generator: DatasetGenerator, entities_: int, seed: int) -> Dataset:
    """Generation k's batch: `entities_` root entities with their children, drawn with seed + BATCH_SEED_OFFSET."""
    return generator.sample(entities_, seed=seed + BATCH_SEED_OFFSET)
