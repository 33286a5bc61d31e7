"""The Dagster code location the browser tests serve: the project's definitions, from the config and lake the
environment names (pipelines/settings.py), plus one generator family built to fail the gate.

`shrunk` is a copula whose numeric columns come out squeezed towards their median: a collapsed batch the
blocking checks must stop. It exists only here, so the demo config cannot select it.
Serve it with `dagster dev -m tests.browser.location -d <repository root>`.
"""

from __future__ import annotations

import polars as pl

from ouroboros.generators import register
from ouroboros.generators.copula import GaussianCopula


class ShrunkCopula(GaussianCopula):
    family = "shrunk"

    def _sample(self, n: int, seed: int) -> pl.DataFrame:
        df = super()._sample(n, seed)
        numeric = [c.name for c in self.schema.columns if c.kind.value == "continuous"]
        return df.with_columns([(pl.col(c) - pl.col(c).median()) * 0.3 + pl.col(c).median() for c in numeric])


register("shrunk", f"{__name__}:ShrunkCopula")

# imported after the registration: pipelines.definitions builds its definitions (and checks every study's
# family) on import
from pipelines.definitions import defs  # noqa: E402, F401 - the code location dagster dev loads
