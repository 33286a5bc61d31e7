"""The default gate approves honest data in the pipeline, with no limit loosened.

Every other pipeline test loosens three joint limits (tests/wiring.py), because the bundled copula does not keep
the demo table's associations well enough for the default gate. Here generation 0 is `replay`, a family that
exists only in this test: it ignores what it is fitted on and hands back rows of the same real table that are in
neither real_train nor real_holdout (drawn without replacement). Such a batch is what the gate's limits are
calibrated against (fresh real rows of the batch's size), so the default gate must approve it; the same replay
with its numeric columns squeezed towards their median must be refused.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from ouroboros.config import GateConfig, PipelineConfig
from ouroboros.generators import register
from ouroboros.generators.base import Generator
from ouroboros.schema import ColumnKind
from ouroboros.verdict import fingerprint
from pipelines.definitions import build_definitions
from pipelines.settings import Settings
from tests.conftest import DEMO
from tests.faultrun import selection
from tests.wiring import approved

SOURCE_ROWS, FRESH_ROWS, BATCH_ROWS = 600, 400, 300
REPLAY_FILE = "replay.parquet"


class Replay(Generator):
    """Replays held-out real rows (the parquet file `rows`), a random `n` of them per sample, never one twice;
    `squeeze` < 1 pulls continuous columns towards their median (a degraded replay, for the control)."""

    family = "replay"
    PARAMS = {"rows": (str, None), "squeeze": (float, 1.0)}

    def _fit(self, df: pl.DataFrame, callback) -> None:
        self.rows = pl.read_parquet(self.params["rows"]).select(df.columns)

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        if n > self.rows.height:
            raise ValueError(f"replay: {n} rows asked, {self.rows.height} held out")
        out = self.rows[np.random.default_rng(seed).permutation(self.rows.height)[:n].tolist()]
        k = self.params["squeeze"]
        if k == 1.0:
            return out
        numeric = [c.name for c in self.schema.columns if c.kind == ColumnKind.CONTINUOUS]
        return out.with_columns([(pl.col(c) - pl.col(c).median()) * k + pl.col(c).median() for c in numeric])

    def _state(self, path: Path) -> None:
        self.rows.write_parquet(path / REPLAY_FILE)

    def _restore(self, path: Path) -> None:
        self.rows = pl.read_parquet(path / REPLAY_FILE)


register("replay", f"{__name__}:Replay")


def run_generation_0(tmp_path: Path, squeeze: float) -> tuple[dict, object]:
    demo = pl.read_parquet(DEMO).sample(n=SOURCE_ROWS + FRESH_ROWS, seed=21, shuffle=True)
    source, fresh = tmp_path / "real.parquet", tmp_path / "fresh.parquet"
    demo.head(SOURCE_ROWS).write_parquet(source)
    demo.slice(SOURCE_ROWS).write_parquet(fresh)  # rows the real table never holds: neither train nor holdout
    config = PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "r", "family": "replay", "generations": 1, "rows": BATCH_ROWS,
                     "params": {"rows": str(fresh), "squeeze": squeeze}}],
        "downstream": {"epochs": 1},
        # no `gate:` block: the default gate, nothing loosened
    })
    assert config.gate == GateConfig()  # every limit at its default
    _, evaluations, verdict = materialise_generation_0(tmp_path, config)
    return evaluations, verdict


def materialise_generation_0(tmp_path: Path, config: PipelineConfig):
    """Real assets and generation 0 of study `r` with its four checks: (the batch, the check evaluations by name,
    the batch's stored verdict under today's rules)."""
    lake = tmp_path / "lake"
    settings = Settings(config_path=tmp_path / "ouroboros.yaml", lake=lake,
                        mlflow_tracking_uri=f"sqlite:///{lake / 'mlflow.db'}", mlflow_artifacts=lake / "mlartifacts",
                        gx_root=lake / "gx", landing=lake / "landing")
    defs = build_definitions(config, settings)
    checks = [["r/batch_g0", c] for c in ("contract", "fidelity", "privacy", "collapse")]
    spec = {"assets": ["real_ingest", "real_data", "real_train", "real_holdout", "real_contract", "r/generator_g0",
                       "r/batch_g0"], "checks": checks}
    with dg.instance_for_test() as instance:
        result = dg.materialize([*defs.assets, *defs.asset_checks], selection=selection(spec), instance=instance,
                                resources=defs.resources, raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key.path[0] == "r"}
    lake_resource = defs.resources["lake"]
    batch = lake_resource.read_asset_table(["r", "batch_g0"])
    rules = lake_resource.current_rules(config.gate.model_dump(), config.data.target)
    return batch, evaluations, lake_resource.read_verdict("r/batch_g0", fingerprint(batch), rules=rules)


def test_default_gate_approves_held_out_real_rows(tmp_path):
    evaluations, verdict = run_generation_0(tmp_path, squeeze=1.0)
    assert set(evaluations) == {"contract", "fidelity", "privacy", "collapse"}
    failed = {c: e.metadata.get("failures") for c, e in evaluations.items()
              if not (approved(e))}
    assert not failed, failed
    assert verdict.passed and not verdict.missing, verdict.failures


@pytest.mark.parametrize("squeeze", [0.3])
def test_default_gate_refuses_a_degraded_replay(tmp_path, squeeze):
    evaluations, verdict = run_generation_0(tmp_path, squeeze=squeeze)
    assert not verdict.passed
    assert not all(e.passed for e in evaluations.values())
