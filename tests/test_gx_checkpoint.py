"""Great Expectations through a Checkpoint: each validation adds its own Data Docs page (UpdateDataDocsAction),
the resource hands back just that page, and one context serves every call."""

from __future__ import annotations

import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality.contract import derive_contract
from resources.great_expectations import GreatExpectationsResource


def test_each_validation_gets_its_own_page_from_one_context(tmp_path, small_demo: pl.DataFrame):
    gx = GreatExpectationsResource(project_root=str(tmp_path / "gx"))
    train, batch = small_demo.head(400), small_demo.tail(200)
    gx.save_suite("contract", derive_contract(train, GateConfig(), batch_rows=batch.height))
    context = gx._context()
    first = gx.validate(batch, "contract", "s.batch_g0")
    second = gx.validate(batch.with_columns(pl.lit(None, dtype=pl.String).alias("sex")), "contract", "s.batch_g1")
    assert gx._context() is context  # reused, not rebuilt per call
    assert not second.success and len(second.failures) > len(first.failures)  # the nulled column fails
    # one page per validation result, written by the checkpoint's action, inside the Data Docs site
    assert first.page and second.page and first.page != second.page
    assert first.page.suffix == ".html" and "validations" in first.page.parts
    site = tmp_path / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (site / "index.html").exists() and first.page.is_relative_to(site)
    assert "s.batch_g1" in second.page.read_text() or "batch_g1" in str(second.page)


def test_contract_suite_and_rules_key_follow_the_rules(tmp_path, small_demo: pl.DataFrame):
    """studies[].rows sets the contract's bounds: a changed batch size (or gate setting) names another suite and
    another rules key, so neither a stale suite nor a verdict judged under the old size is used."""
    from assets.checks import judged_under
    from assets.real import contract_suite_name, save_contract_suite
    from ouroboros.config import PipelineConfig
    from resources.lake import LakeResource, asset_file, atomic_write_json, atomic_write_parquet

    train, holdout = small_demo.head(400), small_demo.tail(200)

    def config(rows: int, **gate) -> PipelineConfig:
        return PipelineConfig.model_validate({
            "data": {"source": "x.parquet", "target": "outcome"}, "gate": gate,
            "studies": [{"name": "s", "rows": rows}, {"name": "t", "rows": rows * 4}]})

    big, small, stricter = config(300), config(60), config(300, spread_tolerance=0.05)
    gx = GreatExpectationsResource(project_root=str(tmp_path / "gx"))
    name, contract = save_contract_suite(gx, big, train)
    assert contract.batch_rows == 300 and gx.has_suite(name)  # the smallest study batch sets the bounds
    assert contract_suite_name(big, train) == name  # same rules, same suite
    for other in (small, stricter):
        assert contract_suite_name(other, train) != name and not gx.has_suite(contract_suite_name(other, train))
        assert judged_under(other, train, holdout) != judged_under(big, train, holdout)
    small_name, small_contract = save_contract_suite(gx, small, train)
    assert small_contract.batch_rows == 60 and gx.has_suite(small_name) and gx.has_suite(name)
    # the key training computes from the stored assets equals the one the checks stamp
    lake = LakeResource(root=str(tmp_path / "lake"))
    atomic_write_parquet(asset_file(lake.root, ["real_train"], ".parquet"), train)
    atomic_write_parquet(asset_file(lake.root, ["real_holdout"], ".parquet"), holdout)
    atomic_write_json(asset_file(lake.root, ["real_contract"], ".json"), small_contract.to_dict())
    assert lake.current_rules(small.gate.model_dump(), "outcome") == judged_under(small, train, holdout)
    assert lake.current_rules(big.gate.model_dump(), "outcome") != judged_under(big, train, holdout)


def test_definitions_are_made_once_per_suite_and_each_batch_only_runs_the_checkpoint(tmp_path, small_demo):
    """The asset, validation definition and checkpoint are made when the suite is saved; a batch adds none, and
    its result is named by the batch and the Dagster run. Rules carry their reason as GX `notes` and their
    severity as `critical` (a contract rule is a hard limit)."""
    gx = GreatExpectationsResource(project_root=str(tmp_path / "gx"))
    train, batch = small_demo.head(400), small_demo.tail(200)
    gx.save_suite("contract", derive_contract(train, GateConfig(), batch_rows=batch.height))
    context = gx._context()
    before = ({c.name for c in context.checkpoints.all()}, {v.name for v in context.validation_definitions.all()})
    assert before == ({"contract"}, {"contract"})
    results = [gx.validate(batch, "contract", f"s.batch_g{k}", run_id=f"run{k}") for k in range(3)]
    after = ({c.name for c in context.checkpoints.all()}, {v.name for v in context.validation_definitions.all()})
    assert after == before  # no definition per batch
    assert all(r.results and all(row["severity"] == "critical" and row["why"] for row in r.results)
               for r in results)
    stored = sorted(str(p) for p in (tmp_path / "gx" / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert any("s.batch_g2@run2" in p for p in stored)
    suite = context.suites.get("contract")
    assert all(e.notes and e.severity.value == "critical" for e in suite.expectations)
