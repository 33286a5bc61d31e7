"""Run part of the real graph against a lake named by the environment: what tests/test_faults.py kills.

`python -m tests.faultrun '<spec json>'` builds the Definitions from OUROBOROS_CONFIG / OUROBOROS_LAKE (as the
`ouroboros` command does), materialises the selection in the spec with the Dagster instance of DAGSTER_HOME,
and prints one JSON line with the outcome. The test process calls `materialize` itself for the rerun.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from ouroboros.config import load_config
from pipelines.definitions import build_definitions
from pipelines.settings import Settings


def selection(spec: dict) -> dg.AssetSelection:
    """Assets without their checks, plus the checks named (asset path, check name), so each run does one thing."""
    assets = dg.AssetSelection.assets(*(dg.AssetKey.from_user_string(k) for k in spec.get("assets", []))).without_checks()
    checks = [dg.AssetCheckKey(dg.AssetKey.from_user_string(a), c) for a, c in spec.get("checks", [])]
    if "real_ingest" in spec.get("assets", []):
        checks.append(dg.AssetCheckKey(dg.AssetKey("real_ingest"), "landing_contract"))  # one op with its asset
    return assets | dg.AssetSelection.checks(*checks) if checks else assets


def materialize(spec: dict, settings: Settings, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = build_definitions(load_config(settings.config_path), settings)
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=selection(spec), instance=instance,
                          resources=defs.resources, run_config=spec.get("run_config"), raise_on_error=False)


def main() -> None:
    spec = json.loads(sys.argv[1])
    with dg.DagsterInstance.get() as instance:
        result = materialize(spec, Settings.from_env(), instance)
    print(json.dumps({"success": result.success, "run_id": result.run_id}))


if __name__ == "__main__":
    main()
