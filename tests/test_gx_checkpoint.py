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
