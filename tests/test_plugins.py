"""Generator families from other packages: the entry-point group `ouroboros.generators` (docs/plugins.md).

The plugin here is a real distribution on sys.path (a package and its `.dist-info` with `entry_points.txt`, as
`pip install` writes them), found by importlib.metadata exactly as an installed one would be.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from ouroboros.chain.step import run_step
from ouroboros.config import GateConfig, PipelineConfig, StudyConfig
from ouroboros.generators import GeneratorError, available, create, load, plugin_families
from pipelines.definitions import PIPELINE_JOB, build_definitions
from tests.test_refusal_outcome import made, settings_for
from tests.wiring import WIRING_GATE

EXAMPLE = Path(__file__).parent / "plugin_example" / "sklearn_family.py"  # docs/plugins.md's worked example

PLUGIN = '''
import polars as pl
from ouroboros.generators.copula import GaussianCopula


class MirrorCopula(GaussianCopula):
    """A copula whose batches come out in reverse row order: a family of its own, from another package."""
    family = "mirror"

    def _sample(self, n, seed):
        return super()._sample(n, seed).reverse()


class Misnamed(GaussianCopula):
    family = "something_else"


class NotAGenerator:
    family = "broken"
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "mirror_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(PLUGIN)
    (pkg / "sklearn_family.py").write_text(EXAMPLE.read_text())
    info = tmp_path / "mirror_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mirror-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [ouroboros.generators]
        mirror = mirror_plugin:MirrorCopula
        mixture = mirror_plugin.sklearn_family:MixtureFamily
        misnamed = mirror_plugin:Misnamed
        broken = mirror_plugin:NotAGenerator
        missing = mirror_plugin:Nowhere
        copula = mirror_plugin:MirrorCopula
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in [m for m in sys.modules if m.startswith("mirror_plugin")]:
        sys.modules.pop(name)


@pytest.fixture
def table():
    return pl.DataFrame({"x": [float(i % 17) for i in range(200)], "k": [["a", "b", "c"][i % 3] for i in range(200)]})


def test_an_installed_plugin_family_fits_samples_saves_and_loads(plugin, table, tmp_path):
    assert plugin_families()["mirror"] == "mirror_plugin:MirrorCopula"
    assert "mirror" in available()
    gen = create("mirror", seed=3).fit(table)
    rows = gen.sample(50, seed=5)
    plain = create("copula", seed=3).fit(table).sample(50, seed=5)
    assert rows.equals(plain.reverse())  # the plugin's own sampling ran, not the built-in copula's
    back = load(gen.save(tmp_path / "saved"))
    assert back.inner.family == "mirror" and back.sample(50, seed=5).equals(rows)


def test_the_chain_step_runs_a_plugin_family(plugin, table):
    study = StudyConfig(name="plugged", family="mirror", generations=1, budget_seconds=5)
    result = run_step(table, study, GateConfig(), 0, batch_rows=40)
    assert result.family == "mirror" and result.generator.inner.family == "mirror"


def test_a_plugin_never_replaces_a_built_in_family(plugin, table):
    assert type(create("copula").inner).__name__ == "GaussianCopula"


@pytest.mark.parametrize("family, message", [
    ("misnamed", "says family = 'something_else'; set it to 'misnamed'"),
    ("broken", "is not a subclass of ouroboros.generators.Generator"),
    ("missing", "cannot import 'mirror_plugin:Nowhere'"),
])
def test_a_broken_plugin_is_named_in_the_error(plugin, family, message):
    with pytest.raises(GeneratorError, match="plugin family") as err:
        create(family)
    assert message in str(err.value) and "entry point" in str(err.value)


def test_an_unknown_family_says_how_to_add_one():
    with pytest.raises(GeneratorError, match="ouroboros.generators"):
        create("nonesuch")


def test_the_worked_example_wraps_a_scikit_learn_object_and_keeps_the_table_s_types(plugin, small_demo, tmp_path):
    gen = create("mixture", seed=1, components=4).fit(small_demo)
    rows = gen.sample(300, seed=2)
    assert rows.schema == small_demo.schema and rows.height == 300
    assert rows.equals(gen.sample(300, seed=2)) and not rows.equals(gen.sample(300, seed=3))
    back = load(gen.save(tmp_path / "mixture"))  # arrays and JSON on disk, no pickle
    assert not list((tmp_path / "mixture").glob("*.pkl")) and back.sample(300, seed=2).equals(rows)
    with pytest.raises(GeneratorError, match="components must be >= 1"):
        create("mixture", components=0)


def test_a_plugin_family_runs_through_the_whole_graph(plugin, small_demo, tmp_path):
    source = tmp_path / "real.parquet"
    small_demo.write_parquet(source)
    config = PipelineConfig.model_validate({
        "data": {"source": str(source), "target": "outcome", "holdout_fraction": 0.25, "seed": 0},
        "studies": [{"name": "plugged", "family": "mirror", "policy": "replace", "generations": 2}],
        "training": {"study": "plugged"}, "downstream": {"epochs": 1}, "gate": WIRING_GATE})
    defs = build_definitions(config, settings_for(tmp_path))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(instance=instance, raise_on_error=False)
    assert result.success
    assert {"plugged/generator_g0", "plugged/batch_g0", "plugged/generator_g1", "plugged/batch_g1",
            "plugged/approved_generator", "training_set", "downstream_model"} <= made(result)
    gen0 = [e for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == "plugged/generator_g0"][0]
    assert gen0.materialization.metadata["family"].value == "mirror"
    checked = {e.asset_key.to_user_string() for e in result.get_asset_check_evaluations()}
    assert "plugged/batch_g0" in checked  # the gate judged the plugin's batch like any other
