"""The Dagster UI end to end, in headless Chromium: what a user sees and clicks.

One `dagster dev` (webserver and daemon) serves tests/browser/location.py on a free port, with a temporary
instance, lake and config (the project's environment variables, pipelines/settings.py). The config holds
a small healthy study and one whose generator is built to fail the gate, on 600 rows of the demo table.
The tests run in file order and share the server: graph, a materialisation launched from the UI, the
blocked batch's check, the collapse report, the landing sensor. Screenshots of every step go to
tests/browser/artifacts/ (git-ignored).

Needs Debian's chromium (`apt-get install -y chromium`; .ci/run installs it) and the `playwright` package;
Playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.wiring import WIRING_GATE

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("OUROBOROS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCATION = "tests.browser.location"
RUN_TIMEOUT_MS = 600_000  # generous: CI machines are shared; a run takes well under a minute alone

CONFIG = """\
data: {source: real.parquet, target: outcome, holdout_fraction: 0.25, seed: 0}
studies:
  - {name: small_copula, family: copula, policy: replace, generations: 2}  # as tests/test_pipeline.py: passes
  - {name: broken_shrunk, family: shrunk, policy: replace, generations: 1}
training: {study: small_copula}
downstream: {epochs: 2}
landing: {settle_seconds: 0}
# the UI is under test here, not the gate: the loosened limits of tests/wiring.py, so the small copula study
# passes while the shrunk one is still blocked
gate: """ + json.dumps(WIRING_GATE) + "\n"

# materialised before the browser opens, on the same instance: the real data (upstream of every study) and the
# broken study, whose batch the gate blocks. Run in a subprocess: it registers the test-only family there only.
PREPARE = """
import dagster as dg
from tests.browser.location import defs
job = dg.define_asset_job("prepare", selection=dg.AssetSelection.groups("real", "broken_shrunk"),
                          executor_def=dg.in_process_executor)
d = dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=[job])
r = d.resolve_job_def("prepare").execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False,
    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
from pipelines.run import refusals
# a refusal is an outcome: the run succeeds and the gate's refusals are all of the broken study's batch
refused = refusals(r)
assert r.success and refused and all(x["batch"] == "broken_shrunk/batch_g0" for x in refused), refused
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """SIGINT is dagster dev's clean shutdown; whatever is left of its process group is killed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo: pl.DataFrame):
    if not Path(CHROMIUM).exists():
        # CI must run these tests (.ci/run installs chromium); elsewhere a missing browser only skips them
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"{CHROMIUM} not found: apt-get install -y chromium (.ci/run does)")
    tmp = tmp_path_factory.mktemp("ui")
    demo.sample(n=600, seed=11, shuffle=True).write_parquet(tmp / "real.parquet")
    (tmp / "ouroboros.yaml").write_text(CONFIG)
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "OUROBOROS_CONFIG": str(tmp / "ouroboros.yaml"),
           "OUROBOROS_LAKE": str(tmp / "lake"), "PYTHONUNBUFFERED": "1"}
    for name in ("MLFLOW_TRACKING_URI", "OUROBOROS_MLFLOW_ARTIFACTS", "OUROBOROS_GX_ROOT", "OUROBOROS_LANDING",
                 "OUROBOROS_ALERT_WEBHOOK"):
        env.pop(name, None)  # all derived from the temporary lake
    port = free_port()
    log = tmp / "dagster_dev.log"
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "wb") as out:
        # its own process group, so the webserver, daemon and code servers stop with it; cwd is the instance
        # home, so dagster does not pick up the repository's dagster.yaml from the working directory
        process = subprocess.Popen([str(dagster), "dev", "-m", LOCATION, "-d", str(ROOT), "-h", "127.0.0.1",
                                    "-p", str(port)], cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        prepared = subprocess.run([sys.executable, "-c", PREPARE], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=300)
        assert prepared.returncode == 0, prepared.stderr[-3000:]
        wait_http(f"http://127.0.0.1:{port}/server_info", process, log)
        yield {"url": f"http://127.0.0.1:{port}", "lake": tmp / "lake", "log": log}
    finally:
        stop(process)
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(log, ARTIFACTS / "dagster_dev.log")  # webserver, daemon and sensor lines, for a failure


@pytest.fixture(scope="module")
def page(server):
    expect.set_options(timeout=60_000)  # web-first assertions wait as long as the page's default timeout

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # only this session's screenshots
    ARTIFACTS.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(60_000)
        # the first visit may open "Join the Dagster community": skip it whenever it shows
        page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
        yield page
        browser.close()


def shot(page, name: str) -> None:
    # animations="disabled" finishes CSS transitions (an opening dialog's fade-in) before the picture is taken
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def open_(page, server, path: str) -> None:
    page.goto(server["url"] + path)
    page.wait_for_load_state("networkidle")


def shows(locator, **kw) -> None:
    """Web-first: Playwright retries until the locator's first match is visible (or the timeout passes)."""
    expect(locator.first).to_be_visible(**kw)


def show_metadata(page, label: str):
    """Open the '[Show ...]' dialog of the metadata entry `label` (a row of the metadata table) and return it."""
    page.get_by_role("row").filter(has=page.get_by_text(label, exact=True)).get_by_text("[Show").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    return dialog


def launch_and_wait(page, button: str) -> str:
    """Click a materialise button, follow the "Launched run" toast to the run's page, wait for its end."""
    page.get_by_role("button", name=button).first.click()
    toast = page.get_by_text("Launched run")
    # materialising an asset whose upstream was never materialised asks "Are you sure?" first
    confirm = page.get_by_role("button", name="Confirm")
    shows(toast.or_(confirm))
    if confirm.is_visible():
        confirm.click()
    shows(toast)
    page.get_by_role("button", name="View").or_(page.get_by_role("link", name="View")).first.click()
    page.wait_for_url("**/runs/**")
    ended = page.get_by_text("Success", exact=True).or_(page.get_by_text("Failure", exact=True))
    shows(ended, timeout=RUN_TIMEOUT_MS)
    return ended.first.inner_text()


def test_asset_graph_shows_study_groups_batches_and_checks(page, server):
    open_(page, server, "/asset-groups")
    for group in ("real", "small_copula", "broken_shrunk", "training", "report"):
        shows(page.get_by_text(group, exact=True))
    shot(page, "01_global_lineage")

    open_(page, server, f"/locations/{LOCATION}/asset-groups/small_copula/lineage")
    for asset in ("generator_g0", "batch_g0", "generator_g1", "batch_g1"):
        shows(page.get_by_text(asset, exact=True))
    shot(page, "02_study_group")

    # a materialised batch shows its checks' state on its node: the broken study's batch was blocked
    open_(page, server, f"/locations/{LOCATION}/asset-groups/broken_shrunk/lineage")
    shows(page.get_by_text("batch_g0", exact=True))
    shows(page.get_by_text("Asset checks"))
    shows(page.get_by_text("/ 4 Passed"))
    shot(page, "02b_blocked_study_group")

    open_(page, server, "/assets/small_copula/batch_g0?view=checks")
    for check in ("contract", "fidelity", "privacy", "collapse"):
        shows(page.get_by_text(check, exact=True))
    shows(page.get_by_text("This is a blocking asset check."))
    shot(page, "03_batch_checks")


def test_materialise_a_study_from_the_ui(page, server):
    open_(page, server, f"/locations/{LOCATION}/asset-groups/small_copula/lineage")
    shows(page.get_by_text("batch_g1", exact=True))
    status = launch_and_wait(page, "Materialize all")
    shot(page, "04_run_of_small_copula")
    assert status == "Success", (server["log"].read_text()[-3000:])
    # the lake holds what the run made, and the gate's stored judgement approved both batches
    for k in range(2):
        assert (server["lake"] / "assets" / "small_copula" / f"batch_g{k}.parquet").exists()
        records = [json.loads(p.read_text()) for p in (server["lake"] / "verdicts" / "small_copula" /
                                                       f"batch_g{k}").glob("*.json")]
        assert len(records) == 4 and all(r["passed"] for r in records)
    open_(page, server, "/assets/small_copula/batch_g1?view=checks")
    shows(page.get_by_text("Succeeded", exact=True))
    shot(page, "05_approved_batch_checks")


def test_blocked_batch_shows_the_failed_check_and_why(page, server):
    open_(page, server, "/assets/broken_shrunk/batch_g0?view=checks")
    shows(page.get_by_text("Failed", exact=True))
    page.get_by_text("collapse", exact=True).first.click()
    # the check's description is the gate's reason; its metadata holds the scores, thresholds and failures
    shows(page.get_by_text("lost spread"))
    shows(page.get_by_text("This is a blocking asset check."))
    shows(page.get_by_text("collapse.spread_ratio_min", exact=True))
    shows(page.get_by_text("thresholds", exact=True))
    shot(page, "06_blocked_batch_check")
    # the failures table: indicator, value, threshold, reason
    dialog = show_metadata(page, "failures")
    for header in ("indicator", "value", "threshold", "reason"):
        expect(dialog.get_by_role("columnheader", name=header)).to_be_visible()
    shows(dialog.get_by_text("spread_ratio.sampling_weight"))
    shot(page, "07_blocked_batch_failures")
    page.keyboard.press("Escape")


def test_collapse_report_renders_markdown_and_plot(page, server):
    open_(page, server, "/assets/collapse_report")
    status = launch_and_wait(page, "Materialize")
    assert status == "Success", (server["log"].read_text()[-3000:])
    open_(page, server, "/assets/collapse_report")
    dialog = show_metadata(page, "report")
    expect(dialog.get_by_role("heading", name="Collapse report")).to_be_visible()
    shows(dialog.get_by_text("guard tripped at generation 0"))
    plot = dialog.locator("img[src^='data:image/png']").first
    expect(plot).to_be_visible()
    assert plot.evaluate("img => img.complete && img.naturalWidth > 500")
    shot(page, "08_collapse_report")
    page.keyboard.press("Escape")


def test_landing_sensor_starts_a_run_for_a_landed_file(page, server, demo):
    open_(page, server, "/automation")
    page.get_by_role("link", name="landing_sensor").first.click()
    shows(page.get_by_text("Running", exact=True))
    switch = page.get_by_role("checkbox").first  # the "Running" toggle, the page's only checkbox
    expect(switch).not_to_be_checked()
    # the input itself is hidden under its styled label: click the label that holds it
    page.locator("label").filter(has=switch).first.click()
    expect(switch).to_be_checked()
    shot(page, "09_landing_sensor_on")

    landing = server["lake"] / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    part = landing / "new_rows.parquet.part"  # written under a temporary name, then renamed: the sensor's contract
    demo.sample(n=120, seed=5, shuffle=True).write_parquet(part)
    part.rename(landing / "new_rows.parquet")

    # the sensor takes a file once two ticks (30 s apart) saw it unchanged; its page refreshes itself
    shows(page.get_by_text("1 run requested"), timeout=300_000)
    shot(page, "10_landing_sensor_requested_a_run")
    open_(page, server, "/runs")
    shows(page.get_by_text("ingest_job", exact=True))  # triage runs apart from training
    shows(page.get_by_text("landed_file: new_rows.parquet"))  # the run is for that file
    shot(page, "11_landing_run_started")
