"""The asset graph of a dataset of several linked tables (`data.tables`, issue 20): the flat graph's shape, one asset
per table where the flat graph has one table.

```
real_ingest --> real_data/<t> (multi-asset, one per table) --> real_split: real_train/<t>, real_holdout/<t>
                                                               (by entity: a root row and its descendants together)
real_train/<t> --> real_contract/<t> (a GX suite per table)
per study s:  s/generator_g<k> --> s/batch_g<k> (multi-asset: s/batch_g<k>/<t>, one step draws every table)
              checks: contract, fidelity, privacy, collapse on each s/batch_g<k>/<t>; links on the root's batch
              s/generator_g<k+1> <-- the pool its policy reads, by entity
dataset_report <-- every batch (reads the stored verdicts)
```

Blocking that still works: the batch is a multi-asset (the tables of one draw must come from one step, or their
keys would not match), and its checks are a separate multi-asset check, so a refusal never fails the step that
made the batch. A refusal is an outcome as in the flat graph: severity WARN, `verdict: refused`, one `REFUSED`
line; each check writes a `CheckRecord` for the dataset batch (key `s/batch_g<k>`, the dataset's content
fingerprint, check names `<table>.<check>` and `links`), and the next generation walks the stored chain
(`ouroboros.lineage.walk_chain`, the flat walk) before it learns: a refused batch makes it return no output, so
Dagster skips what follows.

The assets are thin: they read, call the core (`ouroboros.chain.dataset_generation`, `ouroboros.quality.
gate_dataset.judge_whole`), then write and log. A flat `data.source` keeps the flat graph (assets/real.py,
assets/generations.py); `family: auto`, budgets, repair and mitigation, training_set and the downstream model
are the flat graph's and are not part of this one yet (docs/relational.md says what is left).
"""


import hashlib
import json
from pathlib import Path

import dagster as dg
import mlflow
import mlflow.data
import polars as pl

from assets.checks import gate_result, log_check_scores, refusal_line
from assets.common import OWNER, batch_key, generator_key, key_text, table_metadata
from assets.dataset_ingest import build_dataset_ingest_asset, dataset_specs, dataset_version, ensure_dataset_tables
from assets.generations import KINDS
from ouroboros.chain.dataset_generation import (
    batch_entities,
    dataset_family,
    draw_dataset_batch,
    fit_dataset_generation,
)
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.dataset import Dataset, TableSpec, validate_dataset
from ouroboros.entity_split import entity_split
from ouroboros.errors import DatasetError, GeneratorError, SplitError
from ouroboros.generators.children import load_dataset_generator
from ouroboros.lineage import REAL_TRAIN, Link, walk_chain
from ouroboros.quality.contract import Contract, derive_contract
from ouroboros.quality.gate_dataset import judge_whole, table_gate
from ouroboros.split import HASH
from ouroboros.verdict import GATE_CHECKS, CheckRecord, dataset_fingerprint, rule_set_hash, rules_key
from resources import GreatExpectationsResource, LakeResource, MlflowResource
from resources.lake import asset_file, atomic_write_bytes, atomic_write_json
from resources.mlflow_tracking import log_dataset_input

LINKS = "links"
REPORT = "dataset_report"


# ---- names ------------------------------------------------------------------------------------------------------

def table_key(kind: str, table: str) -> dg.AssetKey:
    """`real_data/<t>`, `real_train/<t>`, `real_holdout/<t>`, `real_contract/<t>`."""
    return dg.AssetKey([kind, table])


def batch_table_key(study: str, generation: int, table: str) -> dg.AssetKey:
    return dg.AssetKey([study, f"batch_g{generation}", table])


def _arg(prefix: str, table: str) -> str:
    return f"{prefix}__{table}"


def required_checks(tables) -> tuple[str, ...]:
    """Every check a dataset batch's verdict needs: each table's four flat checks, and the links."""
    return (*(f"{t}.{c}" for t in tables for c in GATE_CHECKS), LINKS)


def _assemble(inputs: dict, prefix: str, specs: dict[str, TableSpec], target) -> Dataset | None:
    if _arg(prefix, next(iter(specs))) not in inputs:
        return None
    return validate_dataset({t: inputs[_arg(prefix, t)] for t in specs}, specs, target)


def dataset_rules(config: PipelineConfig, real_train: Dataset, real_holdout: Dataset, entities: int) -> str:
    """The rules key of a dataset verdict: gate settings, batch size, target, and both real datasets."""
    target = ".".join(real_train.target) if real_train.target else None
    return rules_key({**config.gate.model_dump(), "contract_batch_entities": entities}, target,
                     dataset_fingerprint(real_train.tables), dataset_fingerprint(real_holdout.tables))


# ---- real data --------------------------------------------------------------------------------------------------

def build_dataset_real_assets(config: PipelineConfig) -> list:
    _, specs, target = dataset_specs(config.data)
    tables = list(specs)
    data = config.data

    @dg.multi_asset(
        name="real_data", group_name="real", can_subset=False, deps=["real_ingest"],
        outs={str(t): dg.AssetOut(key=table_key("real_data", t), kinds={"deltalake", "polars"}, owners=[OWNER],
                                  description=f"Real table {t!r} (Delta Lake, append-only) at its latest version.")
              for t in tables},
    )
    def real_data(context: dg.AssetExecutionContext, lake: LakeResource):
        ensure_dataset_tables(lake, data)
        frames, versions = {}, {}
        for t in tables:
            versions[t] = lake.real_table_head(t)
            frames[t] = lake.read_real(versions[t], t)
        try:
            ds = validate_dataset(frames, specs, target)
        except DatasetError as exc:
            raise dg.Failure(f"real_data ({lake.real_dir() / 'tables'}): {exc}") from exc
        for t in tables:
            lake.record_real_version({"version": versions[t], "table": lake.real_table_uri(t),
                                      "rows": frames[t].height, "run_id": context.run.run_id}, t)
            yield dg.Output(ds.tables[t], output_name=t, metadata={
                **table_metadata(ds.tables[t]), "real_table_version": versions[t],
                "dataset_version": dataset_version(versions),  # what the retrain sensor compares
                "real_table": dg.MetadataValue.path(lake.real_table_uri(t)), **_link_metadata(ds, t)})

    outs = {}
    for t in tables:
        outs[_arg("train", t)] = dg.AssetOut(key=table_key("real_train", t), kinds={"polars", "parquet"},
                                             owners=[OWNER], description=f"Rows of {t!r} whose entity is on the "
                                             "train side: generators learn from them.")
        outs[_arg("holdout", t)] = dg.AssetOut(key=table_key("real_holdout", t), kinds={"polars", "parquet"},
                                               owners=[OWNER], description=f"Rows of {t!r} whose entity is held "
                                               "out: no generator ever sees them.")

    @dg.multi_asset(name="real_split", group_name="real", can_subset=False, outs=outs,
                    ins={_arg("real", t): dg.AssetIn(table_key("real_data", t)) for t in tables})
    def real_split(context: dg.AssetExecutionContext, lake: LakeResource, **inputs: pl.DataFrame):
        ds = _assemble(inputs, "real", specs, target)
        check_entity_split_rule(lake, config, ds)
        try:
            train, holdout = entity_split(ds, data.holdout_fraction, data.seed)
        except SplitError as exc:
            raise dg.Failure(f"real_split: {exc}") from exc
        rule = entity_split_text(config, ds)
        for t in tables:
            yield dg.Output(train.tables[t], output_name=_arg("train", t),
                            metadata={**table_metadata(train.tables[t]), "split_rule": rule})
            yield dg.Output(holdout.tables[t], output_name=_arg("holdout", t),
                            metadata={**table_metadata(holdout.tables[t]), "split_rule": rule})

    @dg.multi_asset(
        name="real_contract", group_name="real", can_subset=False,
        ins={_arg("train", t): dg.AssetIn(table_key("real_train", t)) for t in tables},
        outs={str(t): dg.AssetOut(key=table_key("real_contract", t), kinds={"great_expectations"}, owners=[OWNER],
                                  description=f"The contract every synthetic {t!r} table must meet, from its "
                                  "real_train rows (keys left out), saved as a GX suite.") for t in tables},
    )
    def real_contract(context: dg.AssetExecutionContext, gx_context: GreatExpectationsResource,
                      **inputs: pl.DataFrame):
        train = _assemble(inputs, "train", specs, target)
        for t in tables:
            contract = contract_for(config, train, t)
            name = suite_name(config, train, t)
            gx_context.save_suite(name, contract)
            yield dg.Output({**contract.to_dict(), "suite": name}, output_name=t,
                            metadata={"rules": len(contract.rules), "suite": name})

    return [build_dataset_ingest_asset(config), real_data, real_split, real_contract]


def _link_metadata(ds: Dataset, table: str) -> dict:
    spec = ds.specs[table]
    meta = {"primary_key": str(spec.key)}
    if spec.parent:
        meta.update({"parent": spec.parent, "foreign_key": ds.foreign_key(table)})
    if spec.order_by:
        meta["order_by"] = spec.order_by
    return meta


def entity_split_text(config: PipelineConfig, ds: Dataset) -> str:
    roots = ", ".join(f"{r}.{ds.specs[r].key}" for r in ds.roots())
    return (f"{HASH}(entity key {roots}, seed={config.data.seed}) < {config.data.holdout_fraction} -> holdout; "
            "every descendant row follows its entity")


def check_entity_split_rule(lake: LakeResource, config: PipelineConfig, ds: Dataset) -> None:
    """Record the entity split rule on first use; refuse a changed one (rows learnt from would move sides)."""
    path = lake.real_dir() / "tables" / "split_rule.json"
    rule = {"hash": HASH, "roots": {r: ds.specs[r].key for r in ds.roots()}, "seed": config.data.seed,
            "holdout_fraction": config.data.holdout_fraction}
    if not path.exists():
        atomic_write_json(path, rule)
        return
    kept = json.loads(path.read_text())
    changed = [k for k in rule if kept.get(k) != rule[k]]
    if changed:
        what = ", ".join(f"{k}: {kept.get(k)!r} -> {rule[k]!r}" for k in changed)
        raise dg.Failure(f"the entity split rule of the real dataset at {path.parent} has changed ({what}). Entities "
                         "that generators learnt from would move into real_holdout. Set the old values back, or "
                         "point OUROBOROS_LAKE at a fresh lake.")


def contract_rows(config: PipelineConfig, train: Dataset, table: str) -> int:
    """Rows of `table` the smallest study's batch is expected to hold: its entities times the rows per entity."""
    roots = train.tables[train.roots()[0]].height
    entities = min(batch_entities(s, roots) for s in config.studies)
    return max(1, round(train.tables[table].height * entities / max(roots, 1)))


def contract_for(config: PipelineConfig, train: Dataset, table: str) -> Contract:
    return derive_contract(train.without_keys(table), table_gate(config.gate, len(train.order)),
                           batch_rows=contract_rows(config, train, table), seed=config.data.seed)


def suite_name(config: PipelineConfig, train: Dataset, table: str) -> str:
    identity = {"gate": config.gate.model_dump(), "rows": contract_rows(config, train, table),
                "train": dataset_fingerprint({table: train.tables[table]}), "seed": config.data.seed}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"real_contract.{table}.{digest}"


# ---- the chain --------------------------------------------------------------------------------------------------

def pool_inputs(study: StudyConfig, generation: int, tables: list[str]) -> dict[str, dg.AssetIn]:
    """What generation k reads, by policy, one input per table: the graph shows what each generation learns."""
    real = {_arg("real_train", t): dg.AssetIn(table_key("real_train", t)) for t in tables}
    if generation == 0:
        return real

    def batch(j: int) -> dict[str, dg.AssetIn]:
        return {_arg(f"batch_g{j}", t): dg.AssetIn(batch_table_key(study.name, j, t)) for t in tables}

    if study.policy == "replace":
        return batch(generation - 1)
    if study.policy == "anchor":
        return {**real, **batch(generation - 1)}
    return {**real, **{k: v for j in range(generation) for k, v in batch(j).items()}}


def read_stored_batch(lake: LakeResource, study: str, generation: int, tables: list[str]) -> dict | None:
    frames = {t: lake.read_asset_table(batch_table_key(study, generation, t).path) for t in tables}
    return None if any(f is None for f in frames.values()) else frames


def read_dataset_chain(lake: LakeResource, study: str, generations: int, tables: list[str],
                       real_train: Dataset, rules: str | None):
    """The flat lineage walk over stored dataset batches: (chain, {generation: verdict})."""
    real_fp = dataset_fingerprint(real_train.tables)
    links, verdicts = [], {}
    for k in range(generations):
        name = key_text(batch_key(study, k))
        frames = read_stored_batch(lake, study, k, tables)
        verdict = None if frames is None else lake.read_verdict(name, dataset_fingerprint(frames),
                                                                required_checks(tables), rules)
        links.append(Link(name, verdict))
        if verdict is None:
            break
        verdicts[k] = verdict
    return walk_chain(links, real_fp, None), verdicts


def stored_real(lake: LakeResource, config: PipelineConfig, kind: str) -> Dataset | None:
    """The stored real_train or real_holdout dataset (None before the split was materialised)."""
    _, specs, target = dataset_specs(config.data)
    frames = {t: lake.read_asset_table(table_key(kind, t).path) for t in specs}
    return None if any(f is None for f in frames.values()) else validate_dataset(frames, specs, target)


def approved_dataset_generations(lake: LakeResource, config: PipelineConfig, study: StudyConfig) -> list[int]:
    """Generations of `study` whose stored dataset batch the gate approved under today's rules and real data, each
    descending from today's real_train (the flat lineage walk)."""
    train, holdout = stored_real(lake, config, "real_train"), stored_real(lake, config, "real_holdout")
    if train is None or holdout is None:
        return []
    rules = dataset_rules(config, train, holdout, batch_entities(study, train.tables[train.roots()[0]].height))
    chain, _ = read_dataset_chain(lake, study.name, study.generations, list(train.order), train, rules)
    return chain.accepted


def build_dataset_generator(config: PipelineConfig, study: StudyConfig, generation: int) -> dg.AssetsDefinition:
    _, specs, target = dataset_specs(config.data)
    tables = list(specs)
    # only what the pool reads: the lineage graph shows what each generation learns from (replace: the batch alone);
    # the stored chain is walked against the stored real data, as the flat generators do
    ins = pool_inputs(study, generation, tables)
    reads = sorted({k.split("__")[0] for k in ins})

    @dg.asset(
        key=generator_key(study.name, generation), ins=ins, group_name=study.name, owners=[OWNER],
        kinds={KINDS.get(study.family, "pytorch"), "mlflow"}, output_required=False,
        tags={"family": study.family, "policy": study.policy},
        description=f"{study.family} dataset generator, generation {generation} of study {study.name} "
                    f"({study.policy} policy): the root table with the number of children per parent, each child "
                    f"table given its parent (sequences given the events before); trained on {', '.join(reads)} "
                    "(whole entities; approved batches only).",
    )
    def generator(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                  **inputs: pl.DataFrame):
        real = _assemble(inputs, "real_train", specs, target)
        batches: list[Dataset | None] = []
        parents: dict[str, str] = {}
        if generation:
            train = real if real is not None else stored_real(lake, config, "real_train")
            holdout = stored_real(lake, config, "real_holdout")
            if train is None or holdout is None:
                raise dg.Failure(f"generation {generation} of {study.name}: real_train and real_holdout have not been "
                                 "materialised; materialise the real group first")
            rules = dataset_rules(config, train, holdout, batch_entities(study, train.tables[train.roots()[0]].height))
            chain, verdicts = read_dataset_chain(lake, study.name, generation, tables, train, rules)
            refusal = chain.refusal
            if refusal is not None and refusal.generation < generation:
                if refusal.kind == "gate" and not verdicts[refusal.generation].missing:
                    context.log.info(f"generation {generation} not made: {refusal.reason}")
                    return  # a refusal is an outcome: Dagster skips what follows
                raise dg.Failure(f"generation {generation} refuses its training pool: {refusal.reason}")
            for j in range(generation):
                ds = _assemble(inputs, f"batch_g{j}", specs, target)
                if ds is not None:
                    fp = dataset_fingerprint(ds.tables)
                    if fp != verdicts[j].batch_fingerprint:
                        raise dg.Failure(f"{key_text(batch_key(study.name, j))}: the batch changed while generation "
                                         f"{generation} was reading it")
                    parents[key_text(batch_key(study.name, j))] = fp
                batches.append(ds)
        uses_real = real is not None
        if uses_real:
            parents[REAL_TRAIN] = dataset_fingerprint(real.tables)
        run_name = f"{study.name}/gen_{generation}"
        with mlflow_tracking.run(run_name, tags={"study": study.name, "family": study.family, "dataset": "true",
                                                  "dagster_run_id": context.run.run_id}) as run:
            try:
                step = fit_dataset_generation(study, generation, real if uses_real else None, batches)
            except (GeneratorError, DatasetError) as exc:
                raise dg.Failure(f"{run_name}: {exc}") from exc
            pool = step.pool
            mlflow.log_params({"family": study.family, "generation": generation, "study": study.name,
                               "policy": study.policy, "seed": step.seed, "tables": ",".join(tables),
                               **{f"pool.{k}": v for k, v in pool.composition.items()},
                               **{f"param.{k}": v for k, v in study.params.items()}})
            mlflow.log_metric("fit_seconds", step.fit_seconds)
            for t in tables:
                log_dataset_input(mlflow.data.from_polars(pool.dataset.tables[t], name=f"{study.name}/pool_g"
                                                          f"{generation}/{t}"), context="training",
                                  tags={"table": t, "rows": str(pool.dataset.tables[t].height)})
            target_dir = lake.generator_dir(study.name, generation)
            lake.replace_dir(target_dir, step.generator.save)
            mlflow.log_artifacts(str(target_dir), artifact_path="dataset_generator")
            url = mlflow_tracking.run_url(run)
        entities = real.tables[real.roots()[0]].height if real is not None else None
        record = {"study": study.name, "family": dataset_family(study), "generation": generation,
                  "path": str(target_dir), "seed": step.seed, "mlflow_run_id": run.info.run_id, "model_uri": None,
                  "pool": pool.composition, "parents": parents, "real_entities": entities,
                  "fit_seconds": step.fit_seconds,
                  "real_table_versions": {t: lake.real_table_version(t) for t in tables}}
        if entities is None:  # replace at k >= 1 reads no real rows: keep generation 0's count
            record["real_entities"] = _generation0_entities(lake, study)
        yield dg.Output(record, metadata={
            "mlflow_run": dg.MetadataValue.url(url), "mlflow_run_id": run.info.run_id, "family": study.family,
            "fit_seconds": round(step.fit_seconds, 3), "pool_entities": dg.MetadataValue.json(pool.composition),
            "pool_rows": dg.MetadataValue.json({t: pool.dataset.tables[t].height for t in tables}),
            "parents": dg.MetadataValue.json(parents), "path": dg.MetadataValue.path(str(target_dir))})

    return generator


def _generation0_entities(lake: LakeResource, study: StudyConfig) -> int | None:
    path = asset_file(lake.root, generator_key(study.name, 0).path, ".json")
    return json.loads(path.read_text()).get("real_entities") if path.exists() else None


def build_dataset_batch(config: PipelineConfig, study: StudyConfig, generation: int) -> dg.AssetsDefinition:
    _, specs, _ = dataset_specs(config.data)
    tables = list(specs)

    @dg.multi_asset(
        name=f"{study.name}__batch_g{generation}", group_name=study.name, can_subset=False,
        ins={"generator": dg.AssetIn(generator_key(study.name, generation))},
        outs={str(t): dg.AssetOut(key=batch_table_key(study.name, generation, t), kinds={"polars", "parquet"},
                                  owners=[OWNER], description=f"Synthetic {t!r} of generation {generation} "
                                  f"({study.name}); may feed training only after its blocking checks and the "
                                  "links check pass.") for t in tables},
    )
    def batch(context: dg.AssetExecutionContext, generator: dict, lake: LakeResource):
        gen = load_dataset_generator(generator["path"])
        entities = batch_entities(study, generator.get("real_entities") or 0)
        if not entities:
            raise dg.Failure(f"{study.name}/batch_g{generation}: the number of entities to draw is unknown; set "
                             f"studies[{study.name}].rows or re-materialise generation 0")
        ds = draw_dataset_batch(gen, entities, generator["seed"])
        fp = dataset_fingerprint(ds.tables)
        name = key_text(batch_key(study.name, generation))
        # what this exact dataset batch descends from, with its verdict: the next generation walks it back
        lake.write_lineage(name, fp, {"study": study.name, "generation": generation, "parents": generator["parents"],
                                      "generator_run_id": generator["mlflow_run_id"], "tables": tables})
        context.log.info(f"{name}: sampled " + ", ".join(f"{ds.tables[t].height} {t}" for t in tables))
        for t in tables:
            yield dg.Output(ds.tables[t], output_name=t, metadata={
                **table_metadata(ds.tables[t]), "dataset_fingerprint": fp, "mlflow_run_id": generator["mlflow_run_id"],
                "parents": dg.MetadataValue.json(generator["parents"]), **_link_metadata(ds, t)})

    return batch


# ---- the gate ---------------------------------------------------------------------------------------------------

def build_dataset_gate(config: PipelineConfig, study: StudyConfig, generation: int) -> dg.AssetChecksDefinition:
    """Each table's four checks and the links check, as one multi-asset check: one step judges the dataset once."""
    _, specs, target = dataset_specs(config.data)
    tables = list(specs)
    roots = [t for t in tables if specs[t].parent is None]
    reads = [generator_key(study.name, generation),
             *(table_key(k, t) for t in tables for k in ("real_train", "real_holdout", "real_contract"))]
    check_specs = [dg.AssetCheckSpec(c, asset=batch_table_key(study.name, generation, t), blocking=True,
                                     additional_deps=reads, description=f"{c} of table {t!r} (its keys left out), "
                                     "at its share of the false-refusal rate")
                   for t in tables for c in GATE_CHECKS]
    check_specs.append(dg.AssetCheckSpec(
        LINKS, asset=batch_table_key(study.name, generation, roots[0]), blocking=True, additional_deps=reads,
        description="Referential integrity, children per parent, parent-child associations, sibling correlation, "
                    "sequence gaps / first and last events / trend / order, and whole-entity copies, each per entity "
                    "against fresh real entities (ouroboros.quality.gate_dataset)."))
    ins = {"generator": dg.AssetIn(generator_key(study.name, generation))}
    for t in tables:
        ins[_arg("batch", t)] = dg.AssetIn(batch_table_key(study.name, generation, t))
        ins[_arg("real_train", t)] = dg.AssetIn(table_key("real_train", t))
        ins[_arg("real_holdout", t)] = dg.AssetIn(table_key("real_holdout", t))
        ins[_arg("real_contract", t)] = dg.AssetIn(table_key("real_contract", t))

    @dg.multi_asset_check(name=f"{study.name}__batch_g{generation}_dataset_gate", specs=check_specs, ins=ins,
                          can_subset=False)
    def dataset_gate(context: dg.AssetCheckExecutionContext, generator: dict, lake: LakeResource,
                     gx_context: GreatExpectationsResource, mlflow_tracking: MlflowResource, **inputs):
        batch = _assemble(inputs, "batch", specs, target)
        train = _assemble(inputs, "real_train", specs, target)
        holdout = _assemble(inputs, "real_holdout", specs, target)
        name = key_text(batch_key(study.name, generation))
        fp = dataset_fingerprint(batch.tables)
        rules = dataset_rules(config, train, holdout, batch_entities(study, train.tables[train.roots()[0]].height))
        rule_set = rule_set_hash(config.gate.model_dump())
        verdict = judge_whole(batch, train, holdout, config.gate)
        summary: dict[str, dict] = {}
        for t in tables:
            key = batch_table_key(study.name, generation, t)
            contract = inputs[_arg("real_contract", t)]
            yield _contract_check(context, key, t, name, fp, rules, rule_set, batch.without_keys(t), contract, generator,
                                  lake, gx_context, mlflow_tracking, summary)
            card = verdict.tables[t]
            for check in GATE_CHECKS[1:]:
                failures = card.failures_for(check) + (card.failures_for("contract") if check == "fidelity" else [])
                warnings, scores = card.warnings_for(check), card.scores_for(check)
                passed = not failures
                # scores under the table's name: the dataset verdict merges every record's scores
                record = CheckRecord(f"{t}.{check}", fp, passed, [f.__dict__ for f in failures],
                                     {f"{t}.{k}": v for k, v in scores.items()},
                                     generator["mlflow_run_id"], warnings=[w.__dict__ for w in warnings],
                                     rules_key=rules, rule_set=rule_set)
                lake.write_check_record(name, record)
                log_check_scores(mlflow_tracking, generator, f"{t}.{check}", passed,
                                 {f"{t}.{k}": v for k, v in scores.items()}, bool(warnings))
                summary[f"{t}.{check}"] = {"passed": passed, "first": failures[0].indicator if failures else None}
                if not passed:
                    context.log.warning(refusal_line(f"{name}/{t}", check, [f.__dict__ for f in failures]))
                rows = "\n".join(f"| `{f.indicator}` | {f.value:.4g} | {f.threshold:.4g} | {f.reason} |"
                                 for f in failures + warnings)
                yield gate_result(key, check, passed, warnings, {
                    "scores": dg.MetadataValue.json({k: float(v) for k, v in scores.items()}),
                    "dataset_fingerprint": fp, "rules_key": rules,
                    "failures": dg.MetadataValue.md("| indicator | value | limit | reason |\n|---|---|---|---|\n" + rows)
                    if rows else dg.MetadataValue.md("none")},
                    None if passed else "; ".join(f.reason for f in failures))
        links = verdict.links
        failed = links.failed
        failures = [{"check": LINKS, "indicator": c.name, "value": c.statistic, "threshold": c.limit,
                     "reason": c.detail or f"{c.name}: {c.statistic:.4g} against real {c.real} (limit {c.limit}, "
                                           f"p {c.p_value})"} for c in failed]
        scores = {f"links.{c.name}": float(c.statistic) for c in links.checks if c.statistic is not None}
        lake.write_check_record(name, CheckRecord(LINKS, fp, links.passed, failures, scores,
                                                  generator["mlflow_run_id"], rules_key=rules, rule_set=rule_set))
        log_check_scores(mlflow_tracking, generator, LINKS, links.passed, scores)
        summary[LINKS] = {"passed": links.passed, "first": failed[0].name if failed else None}
        report = write_gate_page(lake, name, fp, verdict, summary)
        mlflow_tracking.client().log_artifact(generator["mlflow_run_id"], str(report), artifact_path=f"gate/{name}")
        if not links.passed:
            context.log.warning(refusal_line(name, LINKS, failures))
        table = "\n".join(f"| {'pass' if c.passed else 'FAIL'} | `{c.name}` | {_fmt(c.statistic)} | {_fmt(c.real)} | "
                          f"{_fmt(c.limit)} | {_fmt(c.p_value)} |" for c in links.checks)
        yield gate_result(batch_table_key(study.name, generation, roots[0]), LINKS, links.passed, [], {
            "checks": len(links.checks), "failed": len(failed), "alpha_per_test": float(links.alpha),
            "dataset_fingerprint": fp, "rules_key": rules, "gate_page": dg.MetadataValue.path(str(report)),
            "skipped": dg.MetadataValue.md("\n".join(f"- `{k}`: {v}" for k, v in links.skipped.items()) or "none"),
            "links": dg.MetadataValue.md("| | check | batch | real | limit | p |\n|---|---|---|---|---|---|\n" + table)},
            None if links.passed else "; ".join(f["indicator"] for f in failures[:5]))

    return dataset_gate


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def _contract_check(context, key, table, name, fp, rules, rule_set, frame, contract, generator, lake, gx_context,
                    mlflow_tracking, summary) -> dg.AssetCheckResult:
    """The table's contract: its GX suite (derived from its real_train rows) run on the batch's table."""
    suite = contract["suite"]
    if not gx_context.has_suite(suite):
        gx_context.save_suite(suite, Contract.from_dict(contract))
    result = gx_context.validate(frame, suite, f"{name}/{table}".replace("/", "."), run_id=context.run.run_id)
    failures = [{"check": "contract", "indicator": f"{r['expectation']}:{r['column']}", "value": r["observed"],
                 "threshold": None, "reason": r["why"]} for r in result.failures]
    scores = {f"{table}.contract.rules": float(len(result.results)),
              f"{table}.contract.failed_rules": float(len(failures))}
    lake.write_check_record(name, CheckRecord(f"{table}.contract", fp, result.success, failures, scores,
                                              generator["mlflow_run_id"], rules_key=rules, rule_set=rule_set))
    log_check_scores(mlflow_tracking, generator, f"{table}.contract", result.success, scores)
    summary[f"{table}.contract"] = {"passed": result.success, "first": failures[0]["indicator"] if failures else None}
    if not result.success:
        context.log.warning(refusal_line(f"{name}/{table}", "contract", failures))
    rows = "\n".join(f"| `{f['indicator']}` | {f['reason']} | {f['value']} |" for f in failures)
    return gate_result(key, "contract", result.success, [], {
        "rules": len(result.results), "failed_rules": len(failures), "suite": suite, "dataset_fingerprint": fp,
        "failures": dg.MetadataValue.md("| rule | why | observed |\n|---|---|---|\n" + rows) if rows
        else dg.MetadataValue.md("all rules passed")}, None if result.success else f"{len(failures)} rule(s) failed")


def write_gate_page(lake: LakeResource, name: str, fp: str, verdict, summary: dict) -> Path:
    """The dataset batch's whole verdict as one markdown page beside its check records."""
    lines = [f"# Gate of {name}", "", f"Dataset fingerprint `{fp}`; {'approved' if verdict.passed else 'REFUSED'}.",
             "", "| check | verdict | first failure |", "|---|---|---|"]
    lines += [f"| `{c}` | {'pass' if s['passed'] else 'REFUSED'} | {s['first'] or ''} |" for c, s in summary.items()]
    lines += ["", "## Links", "", "| check | batch | real | limit | p | passed | detail |", "|---|---|---|---|---|---|---|"]
    skipped = [f"- `{k}` skipped: {v}" for k, v in verdict.links.skipped.items()]
    lines += [f"| `{c.name}` | {_fmt(c.statistic)} | {_fmt(c.real)} | {_fmt(c.limit)} | {_fmt(c.p_value)} | {c.passed} | "
              f"{c.detail} |" for c in verdict.links.checks]
    lines += ["", *skipped] if skipped else []
    path = lake.verdict_dir(name) / "gate.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path


# ---- the report -------------------------------------------------------------------------------------------------

def build_dataset_report(config: PipelineConfig) -> dg.AssetsDefinition:
    _, specs, target = dataset_specs(config.data)
    tables = list(specs)
    deps = [batch_table_key(s.name, k, t) for s in config.studies for k in range(s.generations) for t in tables]

    @dg.asset(
        name=REPORT, deps=deps, group_name="report", kinds={"markdown"}, owners=[OWNER],
        ins={**{_arg("real_train", t): dg.AssetIn(table_key("real_train", t)) for t in tables},
             **{_arg("real_holdout", t): dg.AssetIn(table_key("real_holdout", t)) for t in tables}},
        description="Generation by generation, per study: each table's checks and the links (children per parent, "
                    "associations, sequences, entity copies) with their values, and where the gate stopped the "
                    "chain. Reads the stored verdicts, so it also runs after a run the gate stopped.",
    )
    def dataset_report(context: dg.AssetExecutionContext, lake: LakeResource,
                       **inputs: pl.DataFrame) -> dg.MaterializeResult:
        train = _assemble(inputs, "real_train", specs, target)
        holdout = _assemble(inputs, "real_holdout", specs, target)
        rows, stops = [], {}
        for s in config.studies:
            rules = dataset_rules(config, train, holdout, batch_entities(s, train.tables[train.roots()[0]].height))
            chain, verdicts = read_dataset_chain(lake, s.name, s.generations, tables, train, rules)
            stops[s.name] = _short(chain.refusal.reason) if chain.refusal else None
            for k, v in verdicts.items():
                row = {"study": s.name, "generation": k, "approved": v.passed and not v.missing}
                row.update({c: v.checks.get(c) for c in required_checks(tables)})
                row.update({m: v.scores[m] for m in sorted(v.scores) if _headline(m)})
                rows.append(row)
        page = dataset_report_markdown(rows, stops, tables)
        out = lake.reports_dir()
        atomic_write_bytes(out / "dataset_report.md", page.encode())
        return dg.MaterializeResult(metadata={"report": dg.MetadataValue.md(page), "generations_judged": len(rows),
                                              "stopped": dg.MetadataValue.json(stops),
                                              "report_path": dg.MetadataValue.path(str(out / "dataset_report.md"))})

    return dataset_report


def _short(reason: str, limit: int = 400) -> str:
    """A refusal's reason for the report's one line (the full text is in the check records and the gate page)."""
    return reason if len(reason) <= limit else reason[:limit].rsplit(";", 1)[0] + "; ... (the gate page has all)"


HEADLINE_LINKS = ("links.children_per_parent", "links.entity_copy", "links.gap", "links.sibling", "links.first",
                  "links.last", "links.trend", "links.smoothness")
# per table (after its name): the flat report's headline indicators as each table's scorecard names them
HEADLINE_TABLE = (".fidelity.column_shapes", ".fidelity.association_retention", ".joint.detection_auc",
                  ".collapse.spread_ratio_min", ".collapse.category_survival_min", ".privacy.exact_copy_rate")


def _headline(metric: str) -> bool:
    return metric.startswith(HEADLINE_LINKS) or metric.endswith(HEADLINE_TABLE)


def dataset_report_markdown(rows: list[dict], stops: dict[str, str | None], tables: list[str]) -> str:
    """Per study: one row per generation with each check's verdict, then the link statistics over generations."""
    lines = ["# Dataset collapse report", ""]
    checks = required_checks(tables)
    for study in dict.fromkeys(r["study"] for r in rows) or stops:
        mine = [r for r in rows if r["study"] == study]
        lines += [f"## {study}", "", f"Stopped: {stops.get(study) or 'no'}", "",
                  "| generation | approved | " + " | ".join(f"`{c}`" for c in checks) + " |",
                  "|---|---|" + "---|" * len(checks)]
        for r in mine:
            cells = ["" if r[c] is None else ("pass" if r[c] else "REFUSED") for c in checks]
            lines.append(f"| {r['generation']} | {r['approved']} | " + " | ".join(cells) + " |")
        per_table = sorted({m for r in mine for m in r if m.endswith(HEADLINE_TABLE)})
        if per_table:
            lines += ["", "| table indicator | " + " | ".join(f"g{r['generation']}" for r in mine) + " |",
                      "|---|" + "---|" * len(mine)]
            lines += [f"| `{m}` | " + " | ".join(_fmt(r.get(m)) for r in mine) + " |" for m in per_table]
        metrics = sorted({m for r in mine for m in r if m.startswith("links.")})
        if metrics:
            lines += ["", "| link statistic | " + " | ".join(f"g{r['generation']}" for r in mine) + " |",
                      "|---|" + "---|" * len(mine)]
            for m in metrics:
                lines.append(f"| `{m[len('links.'):]}` | " + " | ".join(_fmt(r.get(m)) for r in mine) + " |")
        lines.append("")
    return "\n".join(lines)


def build_dataset_assets(config: PipelineConfig) -> tuple[list, list]:
    """Every asset and check of the dataset graph."""
    assets, checks = build_dataset_real_assets(config), []
    for study in config.studies:
        dataset_family(study)  # family auto is refused at load time, with what to write instead
        for k in range(study.generations):
            assets += [build_dataset_generator(config, study, k), build_dataset_batch(config, study, k)]
            checks.append(build_dataset_gate(config, study, k))
    assets.append(build_dataset_report(config))
    return assets, checks
