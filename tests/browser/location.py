"""The Dagster code location the browser tests serve: the project's definitions, from the config and lake the
environment names (pipelines/settings.py), plus the test-only family `shrunk` (tests/wiring.py), built to fail
the gate.
Serve it with `dagster dev -m tests.browser.location -d <repository root>`.
"""

from __future__ import annotations

# isort: off
from tests.wiring import ShrunkCopula  # noqa: F401 - importing it registers the `shrunk` family

# imported after the registration: pipelines.definitions builds its definitions (and checks every study's
# family) on import
from pipelines.definitions import defs  # noqa: F401 - the code location dagster dev loads
# isort: on
