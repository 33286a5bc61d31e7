"""Great Expectations as a resource: a file-backed context, suites built from contracts, validation through a
Checkpoint whose UpdateDataDocsAction adds each result's page to the Data Docs site.

The data asset, batch definition, validation definition and checkpoint are made once per suite, when the suite is
saved (under a file lock: GX's file stores are not safe for concurrent writers of the context's config). A batch
then only runs the suite's checkpoint with the batch as its dataframe parameter and a run id naming the batch and
the Dagster run, which writes a validation result and its page but no config: no lock is needed for it."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import dagster as dg
import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import ProgressBarsConfig
from pydantic import PrivateAttr

from ouroboros.quality.contract import Contract, validation_frame
from resources.file_lock import exclusive_lock

DATA_SOURCE = "ouroboros_batches"


class ExpectColumnTailQuantilesToBeBetween(gxe.ExpectColumnQuantileValuesToBeBetween):
    """The stock quantile expectation; its `success` comes back as numpy.bool_ under numpy 2, which the
    file store cannot serialise, so it is cast to a plain bool here."""

    def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
        out = super()._validate(metrics, runtime_configuration, execution_engine)
        out["success"] = bool(out["success"])
        return out


_OVERRIDES = {"ExpectColumnQuantileValuesToBeBetween": ExpectColumnTailQuantilesToBeBetween}


@dataclass
class ContractValidation:
    success: bool
    results: list[dict] = field(default_factory=list)  # one per rule: expectation, column, success, observed, why
    page: Path | None = None  # this validation's Data Docs page (only this batch's, not the whole site)

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["success"]]


class GreatExpectationsResource(dg.ConfigurableResource):
    """`project_root` holds the GX file context (suites, validation results, Data Docs)."""

    project_root: str
    _cached = PrivateAttr(default=None)  # one context per resource instance (a step), not one per call

    def _context(self):
        if self._cached is None:
            logging.getLogger("great_expectations").setLevel(logging.WARNING)
            Path(self.project_root).mkdir(parents=True, exist_ok=True)
            context = gx.get_context(mode="file", project_root_dir=self.project_root)
            # a progress bar per validation would flood the terminal of `ouroboros run` and the run logs
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            self._cached = context
        return self._cached

    @contextmanager
    def _locked(self):
        """One writer of the file context at a time across processes: under the multiprocess executor two
        contract checks would otherwise rewrite the suite and the context config at once (GX's file stores are
        not safe for concurrent writers)."""
        with exclusive_lock(Path(self.project_root) / ".ouroboros.lock"):
            yield

    def save_suite(self, name: str, contract: Contract) -> str:
        """Write the contract as a GX expectation suite named `name`, with its checkpoint."""
        with self._locked():
            return self._save_suite(name, contract)

    def _save_suite(self, name: str, contract: Contract) -> str:
        context = self._context()
        suite = gx.ExpectationSuite(name=name)
        for rule in contract.rules:
            cls = _OVERRIDES.get(rule.expectation) or getattr(gxe, rule.expectation)
            # every contract rule is a hard limit (a failed one refuses the batch); `notes` says what it protects
            suite.add_expectation(cls(**rule.kwargs, notes=rule.why, severity="critical"))
        context.suites.add_or_update(suite)
        self._checkpoint(name, create=True)
        return name

    def _checkpoint(self, suite_name: str, create: bool = False):
        """The suite's checkpoint (its data asset, batch and validation definitions made with it)."""
        context = self._context()
        if not create:
            try:
                return context.checkpoints.get(suite_name)
            except Exception:  # noqa: BLE001 - GX raises several store errors for a missing name
                with self._locked():
                    return self._checkpoint(suite_name, create=True)
        source = context.data_sources.add_or_update_pandas(DATA_SOURCE)
        try:
            asset = source.get_asset(suite_name)
        except LookupError:
            asset = source.add_dataframe_asset(suite_name)
        try:
            batch_def = asset.get_batch_definition("whole")
        except KeyError:
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch_def, suite=context.suites.get(suite_name)))
        return context.checkpoints.add_or_update(gx.Checkpoint(
            name=suite_name, validation_definitions=[definition], result_format="SUMMARY",
            actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")]))

    def has_suite(self, name: str) -> bool:
        """Whether a suite of this name is stored in the context."""
        with self._locked():
            return name in {s.name for s in self._context().suites.all()}

    def validate(self, df: pl.DataFrame, suite_name: str, batch_name: str,
                 run_id: str | None = None) -> ContractValidation:
        """Validate a frame against a stored suite through its checkpoint; the result (run name
        `<batch_name>@<run_id>`) and its Data Docs page are kept in the context."""
        checkpoint = self._checkpoint(suite_name)
        run = RunIdentifier(run_name=f"{batch_name}@{run_id}" if run_id else batch_name)
        outcome = checkpoint.run(batch_parameters={"dataframe": validation_frame(df)}, run_id=run)
        identifier, result = next(iter(outcome.run_results.items()))
        page = self._page(identifier)
        rows = []
        for r in result.results:
            cfg = r.expectation_config
            rows.append({
                "expectation": cfg.type,
                "column": cfg.kwargs.get("column"),
                "success": bool(r.success),
                "observed": _jsonable(r.result.get("observed_value", r.result.get("unexpected_percent"))),
                "why": cfg.notes or (cfg.meta or {}).get("why", ""),  # meta: suites saved before notes were used
                "severity": getattr(cfg.severity, "value", cfg.severity),
            })
        return ContractValidation(success=bool(result.success), results=rows, page=page)

    def _page(self, identifier) -> Path | None:
        """The local file of one validation result's Data Docs page (None if the site is not on local disk)."""
        urls = self._context().get_docs_sites_urls(resource_identifier=identifier)
        url = urls[0]["site_url"] if urls else None
        if not url or not url.startswith("file:"):
            return None
        path = Path(unquote(urlparse(url).path))
        return path if path.exists() else None

    def docs_index(self) -> str:
        """URL of the Data Docs site's index page."""
        return self._context().get_docs_sites_urls()[0]["site_url"]


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
