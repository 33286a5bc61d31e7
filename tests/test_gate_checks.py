"""How the asset checks turn a scorecard into Dagster results: a hard limit refuses (a failed check marked
`verdict: refused`, severity WARN so that it fails no step: a refusal is an outcome, the stored verdict blocks),
soft limits pass with the breaches named while the stored record still approves, and metric names stay valid for
MLflow."""

from __future__ import annotations

import dagster as dg

from assets.checks import _metric_name, gate_result, refusal_line
from ouroboros.quality import Failure, Scorecard
from ouroboros.verdict import CheckRecord, Verdict

WARNING = Failure("fidelity", "joint.detection_auc", 0.85, 0.8, "a classifier tells them apart", "warn")
FAILURE = Failure("collapse", "variance_ratio.x", 0.5, 0.75, "x lost spread")
KEY = dg.AssetKey(["s", "batch_g0"])


def test_clean_check_passes():
    result = gate_result(KEY, "fidelity", True, [], {}, None)
    assert result.passed and result.metadata["verdict"].value == "approved"


def test_soft_limit_passes_and_says_so():
    result = gate_result(KEY, "fidelity", True, [WARNING], {}, None)
    assert result.passed and result.metadata["soft_limits_breached"].value == 1
    assert "still approved" in result.description


def test_hard_limit_refuses_even_with_warnings_without_failing_the_step():
    result = gate_result(KEY, "collapse", False, [WARNING], {}, "x lost spread")
    assert result.asset_key == KEY and result.check_name == "collapse"
    assert not result.passed and result.metadata["verdict"].value == "refused"
    assert result.description.startswith("REFUSED by the gate (collapse): x lost spread")
    # ERROR on a blocking check makes Dagster fail the step and the run: a refusal must not
    assert result.severity == dg.AssetCheckSeverity.WARN


def test_a_refusal_is_one_line_naming_batch_indicator_value_and_limit():
    line = refusal_line("s/batch_g1", "collapse", [FAILURE.__dict__, FAILURE.__dict__])
    assert line == "REFUSED s/batch_g1 by collapse: variance_ratio.x = 0.5, limit 0.75 (+1 more)"
    assert refusal_line("s/batch_g0", "contract", [{"indicator": "expect_x:age", "value": None, "threshold": None,
                                                   "reason": "age keeps its range"}]).endswith(
        "contract: expect_x:age: age keeps its range")


def test_warnings_never_enter_the_verdict():
    records = [CheckRecord(c, "fp", True, [], {}, warnings=[WARNING.__dict__] if c == "fidelity" else [])
               for c in ("contract", "fidelity", "privacy", "collapse")]
    assert Verdict.combine("b", records, "fp").passed
    card = Scorecard(passed=True, warnings=[WARNING])
    assert Scorecard.from_dict(card.to_dict()).warnings_for("fidelity") == [WARNING]


def test_metric_names_are_valid_for_mlflow():
    assert _metric_name("gate.fidelity.pair.a|b (x)") == "gate.fidelity.pair.a_b _x_"


def test_a_changed_rule_target_or_real_data_judges_a_stored_batch_again(tmp_path, small_demo):
    """The verdict's key holds the batch fingerprint, the gate settings, the target and the real data: the cached
    scorecard is reused only under the same key, and stored records made under another key do not approve."""
    from assets.checks import _scorecard, judged_under
    from ouroboros.config import GateConfig, PipelineConfig
    from ouroboros.quality.contract import derive_contract
    from ouroboros.verdict import GATE_CHECKS, fingerprint
    from resources import LakeResource

    train, holdout, batch = small_demo[:400], small_demo[400:500], small_demo[500:]
    lake = LakeResource(root=str(tmp_path))
    contract = derive_contract(train, GateConfig(), batch_rows=100)
    config = PipelineConfig.model_validate({"data": {"source": "real.parquet", "target": "outcome"}})
    fp, rules = fingerprint(batch), judged_under(config, train, holdout)
    assert _scorecard(lake, "s/batch_g0", fp, batch, train, holdout, config, contract, rules)[1]  # judged
    assert not _scorecard(lake, "s/batch_g0", fp, batch, train, holdout, config, contract, rules)[1]  # reused
    stricter = config.model_copy(update={"gate": GateConfig(min_column_shape=0.9)})
    new_rules = judged_under(stricter, train, holdout)
    assert new_rules != rules
    assert _scorecard(lake, "s/batch_g0", fp, batch, train, holdout, stricter, contract, new_rules)[1]  # judged again
    other_target = config.model_copy(update={"data": config.data.model_copy(update={"target": "sex"})})
    assert len({rules, new_rules, judged_under(other_target, train, holdout), judged_under(config, train[1:], holdout),
                judged_under(config, train, holdout[1:])}) == 5
    records = [CheckRecord(c, fp, True, rules_key=rules) for c in GATE_CHECKS]
    assert Verdict.combine("s/batch_g0", records, fp, rules=rules).passed
    stale = Verdict.combine("s/batch_g0", records, fp, rules=new_rules)
    assert not stale.passed and stale.missing == list(GATE_CHECKS)
