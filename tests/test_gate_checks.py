"""How the asset checks turn a scorecard into Dagster results: hard limits block (ERROR), soft limits warn (WARN)
without blocking while the stored record still approves, and metric names stay valid for MLflow."""

from __future__ import annotations

import dagster as dg

from assets.checks import _metric_name, _result
from ouroboros.quality import Failure, Scorecard
from ouroboros.verdict import CheckRecord, Verdict

WARNING = Failure("fidelity", "joint.detection_auc", 0.85, 0.8, "a classifier tells them apart", "warn")
FAILURE = Failure("collapse", "variance_ratio.x", 0.5, 0.75, "x lost spread")


def test_clean_check_passes():
    result = _result("fidelity", True, [], {}, None)
    assert result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def test_soft_limit_is_a_non_blocking_warning():
    result = _result("fidelity", True, [WARNING], {}, None)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "still approved" in result.description


def test_hard_limit_blocks_even_with_warnings():
    result = _result("collapse", False, [WARNING], {}, "x lost spread")
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR


def test_warnings_never_enter_the_verdict():
    records = [CheckRecord(c, "fp", True, [], {}, warnings=[WARNING.__dict__] if c == "fidelity" else [])
               for c in ("contract", "fidelity", "privacy", "collapse")]
    assert Verdict.combine("b", records, "fp").passed
    card = Scorecard(passed=True, warnings=[WARNING])
    assert Scorecard.from_dict(card.to_dict()).warnings_for("fidelity") == [WARNING]


def test_metric_names_are_valid_for_mlflow():
    assert _metric_name("gate.fidelity.pair.a|b (x)") == "gate.fidelity.pair.a_b _x_"
