"""IO manager of the lake: polars frames as parquet, plain records as JSON, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import polars as pl

from resources.lake import asset_file, atomic_write_json, atomic_write_parquet


class LakeIOManager(dg.ConfigurableIOManager):
    """Stores each asset under `<root>/assets/<key path>`; polars-2 friendly (no dagster-polars pin)."""

    root: str

    def _base(self, key: dg.AssetKey) -> Path:
        return asset_file(self.root, key.path, "")

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        base = self._base(context.asset_key)
        if isinstance(obj, pl.DataFrame):
            atomic_write_parquet(base.with_suffix(".parquet"), obj)
            base.with_suffix(".json").unlink(missing_ok=True)
        elif obj is None:
            return
        else:
            atomic_write_json(base.with_suffix(".json"), obj)
            base.with_suffix(".parquet").unlink(missing_ok=True)

    def load_input(self, context: dg.InputContext):
        base = self._base(context.asset_key)
        if base.with_suffix(".parquet").exists():
            return pl.read_parquet(base.with_suffix(".parquet"))
        if base.with_suffix(".json").exists():
            return json.loads(base.with_suffix(".json").read_text())
        raise FileNotFoundError(
            f"asset {context.asset_key.to_user_string()} has not been materialised yet "
            f"(nothing at {base}.parquet/.json); materialise it first"
        )
