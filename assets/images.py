"""Image studies as assets (data.kind: images): real digits, the stable split, and per study the chain of
generators and batches, each batch gated by one multi-asset check with three blocking checks (fidelity,
privacy, collapse) whose records go to the lake's verdict store, and a report with a grid per generation.

Landing: PNGs dropped into `<landing>/<label>/` are judged when real_images materialises
(ouroboros.images.landing): accepted into the real set (kept in the lake, listed in a ledger) or quarantined
with a reason file that names the file, as table files are (docs/images.md).
"""


import base64
import io
import json
import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import polars as pl
from mlflow.entities import Metric
from PIL import Image

from assets.checks import gate_result, refusal_line
from assets.common import OWNER, batch_key, generator_key, key_text
from ouroboros.config import PipelineConfig, StudyConfig
from ouroboros.images.chain import build_pool, grid_png
from ouroboros.images.data import ImageSet, from_frame, load_source, to_frame
from ouroboros.images.gate import IMAGE_CHECKS, ImageGate
from ouroboros.images.generators import create, load
from ouroboros.images.landing import check_landed_image, landed_files
from ouroboros.images.split import IMAGE_HASH, split_images
from ouroboros.landing import summarise
from ouroboros.verdict import CheckRecord, GateRefusal, fingerprint, require_approved, rule_set_hash
from resources import LakeResource, MlflowResource
from resources.lake import atomic_write_bytes, atomic_write_json


def _grid_md(title: str, png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _ledger_path(lake: LakeResource) -> Path:
    return lake.real_dir() / "images_ledger.json"


def read_image_ledger(lake: LakeResource) -> list[dict]:
    """The landed images accepted into the real set, in the order they were accepted."""
    path = _ledger_path(lake)
    return json.loads(path.read_text())["images"] if path.exists() else []


def landed_images(lake: LakeResource, shape: tuple[int, int]) -> ImageSet:
    """The accepted landed images, read back from the lake's copies (the ledger's order)."""
    from PIL import Image

    entries = read_image_ledger(lake)
    images = [np.asarray(Image.open(e["archive"]), dtype=np.float32) / 255.0 for e in entries]
    return ImageSet(np.stack(images) if images else np.zeros((0, *shape), np.float32),
                    np.asarray([e["label"] for e in entries], np.int64))


def land_images(log, landing: Path, lake: LakeResource, real: ImageSet) -> list[dict]:
    """Judge every PNG waiting in `landing`: accepted ones are copied into the lake and listed in the ledger
    (then leave landing), refused ones move to the quarantine with a reason file. Returns the outcomes."""
    classes = sorted(int(c) for c in np.unique(real.labels))
    ledger = read_image_ledger(lake)
    outcomes = []
    for path in landed_files(landing):
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        judged = check_landed_image(path, landing, classes, real.shape, {e["sha256"] for e in ledger})
        base = {"file": judged.name, "sha256": judged.sha256, "label": judged.label, "kind": "image"}
        if not judged.accepted:
            target = _unused(lake.quarantine_dir() / f"{stamp}_{_safe(judged.name)}")
            reason = {**base, "status": "quarantined", "quarantined_file": str(target), "quarantined_at": stamp,
                      "summary": summarise(list(judged.problems)), "reasons": [p.to_dict() for p in judged.problems]}
            # the reason goes first: a crash between the two leaves the file in landing, to be judged again
            atomic_write_json(target.with_name(target.name + ".reason.json"), reason)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), target)  # a link is moved as a link, never followed
            log.error(f"quarantined {judged.name}: {reason['summary']}")
            outcomes.append(reason)
            continue
        archive = lake.real_dir() / "images_landed" / str(judged.label) / f"{judged.sha256[:16]}.png"
        buf = io.BytesIO()
        Image.fromarray(judged.pixels).save(buf, format="PNG")
        atomic_write_bytes(archive, buf.getvalue())
        ledger.append({**base, "archive": str(archive), "accepted_at": stamp})
        atomic_write_json(_ledger_path(lake), {"images": ledger})  # committed: the image is in the real set
        path.unlink()  # only after the commit: a crash before this line leaves the file (then a duplicate_file)
        log.info(f"accepted {judged.name}: label {judged.label}, now in the real set")
        outcomes.append({**base, "status": "accepted", "archive": str(archive)})
    return outcomes


def _safe(name: str) -> str:
    """A landed name as it may appear in the lake ('3/x y.png' -> '3_x_y.png'); the original is in the reason."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")[:120] or "file"


def _unused(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".reason.json").exists():
        candidate, n = path.with_name(f"{n}_{path.name}"), n + 1
    return candidate


def build_real_image_assets(config: PipelineConfig, landing: Path | None = None) -> list:
    """`landing`: the folder images land in (Settings.landing); None: the lake's `landing/` (its default)."""
    data = config.data

    @dg.asset(group_name="real", kinds={"numpy", "parquet"}, owners=[OWNER],
              description=f"The real images of {data.source} and the PNGs accepted from the landing folder "
                          "(<landing>/<label>/*.png, judged here), one row per image (label, uint8 bytes, shape).")
    def real_images(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.Output[pl.DataFrame]:
        source = load_source(data.source)
        outcomes = land_images(context.log, Path(landing) if landing else lake.landing_dir(), lake, source)
        landed = landed_images(lake, source.shape)
        df = to_frame(ImageSet.concat([source, landed]) if len(landed) else source)
        quarantined = [o for o in outcomes if o["status"] == "quarantined"]
        return dg.Output(df, metadata={
            "dagster/row_count": df.height, "fingerprint": fingerprint(df), "source": data.source,
            "landed_images": len(landed), "accepted_now": len(outcomes) - len(quarantined),
            "quarantined_now": len(quarantined),
            "quarantined": dg.MetadataValue.json([{k: o[k] for k in ("file", "summary")} for o in quarantined])})

    @dg.multi_asset(group_name="real", outs={"real_train": dg.AssetOut(), "real_holdout": dg.AssetOut()},
                    description="The stable split: a BLAKE2b hash of each image's bytes, label and copy number; the "
                                "holdout is never given to a generator.")
    def image_split(real_images: pl.DataFrame, lake: LakeResource):
        train, holdout = split_images(from_frame(real_images), data.holdout_fraction, data.seed)
        atomic_write_json(lake.real_dir() / "split_rule.json", {"hash": IMAGE_HASH, "seed": data.seed,
                                                                "holdout_fraction": data.holdout_fraction})
        for name, part in (("real_train", train), ("real_holdout", holdout)):
            df = to_frame(part)
            yield dg.Output(df, output_name=name, metadata={"dagster/row_count": df.height,
                                                            "fingerprint": fingerprint(df)})

    return [real_images, image_split]


def _inputs(study: StudyConfig, k: int) -> dict[str, dg.AssetIn]:
    ins = {"real_train": dg.AssetIn("real_train")} if k == 0 or study.policy != "replace" else {}
    if k:
        first = 0 if study.policy == "accumulate" else k - 1
        ins.update({f"batch_g{j}": dg.AssetIn(batch_key(study.name, j)) for j in range(first, k)})
    return ins


def approved_generations(lake: LakeResource, study: StudyConfig) -> list[int]:
    """The generations of an image study whose batch, as stored now, the gate approved (all IMAGE_CHECKS passed
    on this version of it): what `bin/run` counts for its exit status."""
    out = []
    for k in range(study.generations):
        df = lake.read_asset_table(batch_key(study.name, k).path)
        if df is None:
            continue
        verdict = lake.read_verdict(key_text(batch_key(study.name, k)), fingerprint(df), required=IMAGE_CHECKS)
        if not verdict.missing and verdict.passed:
            out.append(k)
    return out


def build_image_study(config: PipelineConfig, study: StudyConfig) -> tuple[list, list]:
    assets, checks = [], []
    for k in range(study.generations):
        assets += [_generator(study, k), _batch(config, study, k)]
        checks.append(_gate(config, study, k))
    return assets, checks


def _generator(study: StudyConfig, k: int) -> dg.AssetsDefinition:
    @dg.asset(key=generator_key(study.name, k), ins=_inputs(study, k), group_name=study.name,
              kinds={"pytorch", "mlflow"}, owners=[OWNER], tags={"family": study.family, "policy": study.policy},
              description=f"{study.family} image generator, generation {k} of {study.name} ({study.policy}).",
              output_required=False)  # not made when the gate refused an input batch: Dagster skips what follows
    def generator(context: dg.AssetExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource,
                  **inputs: pl.DataFrame):
        batches, parents = [None] * k, {}
        for j in range(k):
            if f"batch_g{j}" not in inputs:
                continue
            key, df = key_text(batch_key(study.name, j)), inputs[f"batch_g{j}"]
            verdict = lake.read_verdict(key, fingerprint(df), required=IMAGE_CHECKS)
            if not verdict.missing and not verdict.passed:
                # a refusal is an outcome: the check logged it; this generation is simply not made
                context.log.info(f"generation {k} not made: the gate refused {key}")
                return
            try:  # the gate across runs: only an approved version of the batch may be learnt from
                require_approved(verdict)
            except GateRefusal as exc:  # not judged under today's rules: an error the user must act on
                raise dg.Failure(f"generation {k} refuses its training pool: {exc}") from exc
            batches[j], parents[key] = from_frame(df), fingerprint(df)
        real = from_frame(inputs["real_train"]) if "real_train" in inputs else None
        if real is not None:
            parents["real_train"] = fingerprint(inputs["real_train"])
        pool = build_pool(study.policy, k, real, batches, lam=study.lam, seed=study.seed)
        seed = study.seed * 1000 + k
        gen = create(study.family, seed=seed, **study.params)
        with mlflow_tracking.run(f"{study.name}/gen_{k}", tags={"study": study.name, "family": study.family,
                                                                "kind": "images", "dagster_run_id": context.run.run_id}) as run:
            mlflow.log_params({"family": study.family, "generation": k, "policy": study.policy, "seed": seed,
                               "pool_images": len(pool), **{f"param.{p}": v for p, v in gen.params.items()}})
            started = time.perf_counter()
            gen.fit(pool, callback=lambda e, losses: mlflow.log_metrics(
                {f"train.{n}": float(v) for n, v in losses.items()}, step=e))
            fit_seconds = time.perf_counter() - started
            mlflow.log_metric("fit_seconds", fit_seconds)
            target = lake.generator_dir(study.name, k)
            lake.replace_dir(target, gen.save)
            mlflow.log_artifacts(str(target), artifact_path="generator")  # load with ouroboros.images.generators.load
            url = mlflow_tracking.run_url(run)
        record = {"study": study.name, "family": study.family, "generation": k, "path": str(target), "seed": seed,
                  "mlflow_run_id": run.info.run_id, "parents": parents, "pool_images": len(pool)}
        yield dg.Output(record, metadata={"mlflow_run": dg.MetadataValue.url(url), "fit_seconds": round(fit_seconds, 2),
                                          "pool_images": len(pool), "parents": dg.MetadataValue.json(parents)})

    return generator


def _batch(config: PipelineConfig, study: StudyConfig, k: int) -> dg.AssetsDefinition:
    @dg.asset(key=batch_key(study.name, k), ins={"generator": dg.AssetIn(generator_key(study.name, k)),
                                                 "real_train": dg.AssetIn("real_train")},
              group_name=study.name, kinds={"numpy", "parquet"}, owners=[OWNER],
              description=f"Synthetic images of generation {k} ({study.name}); feed later generations only once "
                          "the image gate approved them.")
    def batch(generator: dict, real_train: pl.DataFrame, lake: LakeResource) -> dg.Output[pl.DataFrame]:
        images = load(generator["path"]).sample(study.rows or real_train.height, seed=generator["seed"] + 7919)
        df = to_frame(images)
        fp = fingerprint(df)
        lake.write_lineage(key_text(batch_key(study.name, k)), fp, {
            "study": study.name, "generation": k, "parents": generator["parents"],
            "generator_run_id": generator["mlflow_run_id"]})
        png = grid_png(images, config.images.grid_per_class)
        atomic_write_bytes(lake.reports_dir() / "images" / study.name / f"batch_g{k}.png", png)
        return dg.Output(df, metadata={"dagster/row_count": df.height, "fingerprint": fp,
                                       "samples": _grid_md(f"{study.name} generation {k}", png)})

    return batch


def _gate(config: PipelineConfig, study: StudyConfig, k: int) -> dg.AssetChecksDefinition:
    key = batch_key(study.name, k)

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(c, asset=key, blocking=True, additional_deps=["real_train", "real_holdout"],
                                 description=f"image gate: {c} tests against fresh real images (docs/images.md)")
               for c in IMAGE_CHECKS],
        name=f"{study.name}_batch_g{k}_image_gate")
    def gate(context: dg.AssetCheckExecutionContext, lake: LakeResource, mlflow_tracking: MlflowResource):
        batch_df = lake.read_asset_table(key.path)
        train, holdout = (from_frame(lake.read_asset_table([n])) for n in ("real_train", "real_holdout"))
        verdict = ImageGate(train, holdout, config.images.gate, config.gate.false_refusal_rate).evaluate(
            from_frame(batch_df))
        fp, rules = fingerprint(batch_df), rule_set_hash(config.images.gate.model_dump())
        atomic_write_json(lake.path / "scorecards" / key_text(key) / f"{fp}.images.json", verdict.to_dict())
        lineage = lake.read_lineage(key_text(key), fp) or {}
        for check in IMAGE_CHECKS:
            passed, failures, scores = verdict.check(check)
            lake.write_check_record(key_text(key), CheckRecord(check, fp, passed, failures, scores,
                                                               run_id=context.op_execution_context.run_id, rule_set=rules))
            if lineage.get("generator_run_id"):  # on the generation's run, through the client (not re-opened)
                ts = int(time.time() * 1000)
                mlflow_tracking.client().log_batch(lineage["generator_run_id"], metrics=[
                    Metric(f"gate.{n}", float(v), ts, 0) for n, v in scores.items()])
            table = "\n".join(f"| {t.name} | {t.value:.4g} | {t.noise_limit:.4g} | {t.effect_limit:.4g} | "
                              f"{'pass' if t.passed else 'FAIL'} |" for t in verdict.tests if t.check == check)
            if not passed:
                context.log.warning(refusal_line(key_text(key), check, failures))
            # as the table gate: a refusal is an outcome (severity WARN, verdict refused), the stored verdict blocks
            yield gate_result(key, check, passed, [], {
                "tests": dg.MetadataValue.md("| test | value | noise limit | effect limit | |\n"
                                             "|---|---|---|---|---|\n" + table),
                "batch_images": verdict.n, **{n: float(v) for n, v in scores.items()}},
                "; ".join(f["reason"] for f in failures) or None)

    return gate


def build_image_report(config: PipelineConfig) -> dg.AssetsDefinition:
    deps = [batch_key(s.name, k) for s in config.studies for k in range(s.generations)]

    @dg.asset(group_name="report", deps=deps, kinds={"markdown"}, owners=[OWNER],
              automation_condition=None,
              description="The image collapse report: the gate's verdict and scores per generation, with a grid of "
                          "sample images per generation.")
    def image_report(lake: LakeResource) -> dg.MaterializeResult:
        lines = ["# Image collapse report", ""]
        pictures = []
        for s in config.studies:
            lines += [f"## {s.name} ({s.family}, {s.policy})", "",
                      "| generation | verdict | FD | precision | recall | utility | diversity | variance | failed |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for k in range(s.generations):
                df = lake.read_asset_table(batch_key(s.name, k).path)
                if df is None:
                    lines.append(f"| g{k} | not made (the guard stopped the chain before it) | | | | | | | |")
                    continue
                v = lake.read_verdict(key_text(batch_key(s.name, k)), fingerprint(df), required=IMAGE_CHECKS)
                sc = v.scores
                word = "pass" if v.passed else ("unjudged" if v.missing else "FAIL")
                lines.append(f"| g{k} | {word} | {sc.get('fidelity.frechet_distance', float('nan')):.3f} | "
                             f"{sc.get('fidelity.precision', float('nan')):.3f} | "
                             f"{sc.get('fidelity.recall', float('nan')):.3f} | "
                             f"{sc.get('fidelity.utility_accuracy', float('nan')):.3f} | "
                             f"{sc.get('collapse.min_class_diversity', float('nan')):.3f} | "
                             f"{sc.get('collapse.intensity_variance_low', float('nan')):.3f} | "
                             f"{', '.join(f['indicator'] for f in v.failures)} |")
                png = lake.reports_dir() / "images" / s.name / f"batch_g{k}.png"
                if png.exists():
                    pictures.append(f"**{s.name} g{k}** ({word})\n\n![{s.name} g{k}](images/{s.name}/batch_g{k}.png)\n")
            lines.append("")
        page = "\n".join(lines + ["## Samples per generation", "", *pictures])
        path = lake.reports_dir() / "images_report.md"
        atomic_write_bytes(path, page.encode())
        inline = page
        for s in config.studies:
            for k in range(s.generations):
                png = lake.reports_dir() / "images" / s.name / f"batch_g{k}.png"
                if png.exists():
                    inline = inline.replace(f"(images/{s.name}/batch_g{k}.png)",
                                            f"(data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()})")
        return dg.MaterializeResult(metadata={"report": dg.MetadataValue.md(inline),
                                              "path": dg.MetadataValue.path(str(path))})

    return image_report


def build_image_assets(config: PipelineConfig, landing: Path | None = None) -> tuple[list, list]:
    assets, checks = build_real_image_assets(config, landing), []
    for study in config.studies:
        a, c = build_image_study(config, study)
        assets += a
        checks += c
    assets.append(build_image_report(config))
    return assets, checks
