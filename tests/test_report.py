"""The collapse report's core: table, guard trips, first movers, noise bands, plot and page."""

from __future__ import annotations

import polars as pl

from ouroboros.config import GateConfig
from ouroboros.quality import evaluate
from ouroboros.report import (
    GenerationRecord,
    data_uri,
    first_movers,
    guard_trips,
    merge_bands,
    noise_band,
    report_markdown,
    report_table,
    scorecard_bands,
)
from ouroboros.report_plot import choose_panels, limits_for, plot_report, score_key


def _records() -> list[GenerationRecord]:
    def rec(study, k, passed, vr, shape, failures=(), policy="replace"):
        scores = {"collapse.spread_ratio.a": vr, "collapse.spread_ratio.b": vr, "fidelity.column_shapes": shape,
                  "fidelity.column_shapes.noise_floor": 0.97}
        return GenerationRecord(study, k, passed, scores, list(failures), "copula", policy, {"real": 10})

    fail = {"check": "collapse", "indicator": "spread_ratio.a", "value": 0.5, "threshold": 0.8, "reason": "squeezed"}
    return [rec("acc", 0, True, 1.0, 0.99, policy="accumulate"), rec("acc", 1, True, 0.99, 0.99, policy="accumulate"),
            rec("acc", 2, True, 1.01, 0.985, policy="accumulate"),
            rec("rep", 0, True, 1.0, 0.99), rec("rep", 1, True, 0.8, 0.97), rec("rep", 2, False, 0.5, 0.9, [fail])]


def test_table_is_long_with_means_and_without_noise_keys():
    table = report_table(_records())
    assert set(table.columns) >= {"study", "family", "policy", "generation", "passed", "indicator", "value"}
    assert "collapse.spread_ratio.mean" in table["indicator"].to_list()
    assert not any(i.endswith(".noise_floor") for i in table["indicator"].to_list())
    assert table.filter((pl.col("study") == "rep") & (pl.col("generation") == 2)
                        & (pl.col("indicator") == "collapse.spread_ratio.mean"))["value"].item() == 0.5


def test_guard_trips_and_first_movers():
    records = _records()
    assert guard_trips(records) == {"acc": None, "rep": (2, "spread_ratio.a")}
    bands = {"collapse.spread_ratio.mean": (0.95, 1.05), "fidelity.column_shapes": (0.98, 0.995)}
    movers = first_movers(report_table(records), bands)
    assert movers["acc"] is None  # every move stays within the real data's own spread
    # rep moves at generation 1 on both; the variance ratio moved by more band widths
    assert movers["rep"][0] == 1 and movers["rep"][1].startswith("collapse.spread_ratio")


def test_bands_from_the_scorecard_and_from_real_data(small_demo):
    assert scorecard_bands(_records()) == {"fidelity.column_shapes": (0.97, 0.97)}
    train, holdout = small_demo.head(400), small_demo.tail(200)
    fast = GateConfig(knn_rows=50, detection_rows=50)
    band = noise_band(train, holdout, lambda s: evaluate(s, train, holdout, fast).scores, rows=200, draws=3)
    lo, hi = band["fidelity.column_shapes"]
    assert 0.8 < lo <= hi <= 1.0
    lo, hi = band["collapse.spread_ratio.mean"]
    assert 0.75 < lo <= hi < 1.25
    merged = merge_bands({"x": (0.1, 0.2)}, {"x": (0.15, 0.3), "y": (1, 2)})
    assert merged == {"x": (0.1, 0.3), "y": (1, 2)}


def test_page_and_plot(tmp_path):
    records = _records()
    png = plot_report(records, report_table(records), tmp_path / "r.png", {"fidelity.column_shapes": (0.98, 0.995)},
                      GateConfig())
    assert png is not None and png.stat().st_size > 10_000
    assert data_uri(png).startswith("data:image/png;base64,iVBOR")
    page = report_markdown(records, png.name, {"collapse.spread_ratio.mean": (0.95, 1.05)},
                           approved={"acc": "`ouroboros.acc.generator@approved` = version 3 (generation 2)"})
    assert "**rep**: guard tripped at generation 2 on `spread_ratio.a`" in page
    assert "**acc**: no gate failure" in page and "no indicator moved beyond real-data noise" in page
    assert "first to move beyond real-data noise: `collapse.spread_ratio" in page
    assert "@approved` = version 3" in page and "![collapse curves](r.png)" in page
    assert "| rep | 2 | real 10 | FAIL (`spread_ratio.a`) | - | - |" in page


def test_page_shows_the_mitigation_and_the_downstream_score_against_the_real_baseline_per_generation():
    scores = {"fidelity.column_shapes": 0.99, "utility.tstr.skill": 0.41, "utility.trtr.skill": 0.52}
    records = [GenerationRecord("rep", 0, True, scores, [], "vae", "replace", {"real": 10}),
               GenerationRecord("rep", 1, True, scores, [], "vae", "replace", {"gen_0": 10}, mitigation="verify"),
               GenerationRecord("obs", 1, False, scores, [], "vae", "replace", {"gen_0": 10}, gate_mode="observe")]
    page = report_markdown(records)
    assert "| mitigation | downstream skill (real baseline) |" in page
    assert "| rep | 0 | real 10 | pass | - | 0.410 (0.520) |" in page
    assert "| rep | 1 | gen_0 10 | pass | verify | 0.410 (0.520) |" in page
    assert "| obs | 1 | gen_0 10 | FAIL, observed only | - |" in page


def test_page_shows_each_pool_by_origin_and_where_lineage_cut_a_chain():
    origins = [{"origin": "real", "study": None, "generation": None, "fingerprint": "a" * 64, "rows": 20, "share": 0.2},
               {"origin": "synthetic", "study": "anc", "generation": 0, "fingerprint": "b" * 64, "rows": 80,
                "share": 0.8}]
    records = [GenerationRecord("anc", 1, True, {"fidelity.column_shapes": 0.99}, [], "copula", "anchor",
                                {"real": 20, "gen_0": 80}, origins)]
    page = report_markdown(records, notes={"anc": "chain ends before generation 2: stale",
                                           "old": "chain ends before generation 0: made from real table version 0"})
    assert "## Pool composition by origin" in page
    assert "| anc | 1 | real_train | `aaaaaaaaaaaa` | 20 | 20.0% |" in page
    assert "| anc | 1 | anc/g0 | `bbbbbbbbbbbb` | 80 | 80.0% |" in page
    assert "; chain ends before generation 2: stale" in page
    assert "- **old**: chain ends before generation 0: made from real table version 0" in page


def test_plot_explains_the_trip_first():
    """The first panel is the indicator that stopped a chain, drawn with the limit the gate applied to it;
    the first movers follow; an indicator without a failure gets the nominal limit of the gate setting."""
    records = _records()
    bands = {"collapse.spread_ratio.a": (0.9, 1.1), "collapse.spread_ratio.b": (0.9, 1.1)}
    panels = choose_panels(records, report_table(records), bands)
    assert panels[0].indicator == "collapse.spread_ratio.a"
    assert panels[0].why == "stopped rep at generation 2"
    assert any(p.why.startswith("first to move in rep") for p in panels[1:])
    assert len({p.indicator for p in panels}) == len(panels) <= 6
    assert limits_for("collapse.spread_ratio.a", records, GateConfig()) == [(0.8, "gate limit (widened to noise)")]
    nominal = dict((label, v) for v, label in limits_for("collapse.spread_ratio.b", records, GateConfig()))
    gate = GateConfig()
    assert nominal == {"gate limit (min_variance_ratio)": gate.min_variance_ratio,
                       "gate limit (max_variance_ratio)": gate.max_variance_ratio}


def test_contract_rules_map_to_the_indicator_they_judge():
    scores = {"collapse.spread_ratio.w": 0.3, "collapse.tail_mass.w": 0.0, "shape.w": 0.7,
              "fidelity.association_retention": 0.1}
    assert score_key({"indicator": "expect_column_stdev_to_be_between:w"}, scores) == "collapse.spread_ratio.w"
    assert score_key({"indicator": "expect_column_tail_quantiles_to_be_between:w"}, scores) == "collapse.tail_mass.w"
    assert score_key({"indicator": "expect_column_values_to_be_between:w"}, scores) == "shape.w"
    assert score_key({"indicator": "spread_ratio.w"}, scores) == "collapse.spread_ratio.w"
    assert score_key({"indicator": "fidelity.association_retention"}, scores) == "fidelity.association_retention"
    assert score_key({"indicator": "columns"}, scores) is None
