"""Generator families from other packages: the entry-point group `ouroboros.generators` (docs/plugins.md).

The plugin here is a real distribution on sys.path (a package and its `.dist-info` with `entry_points.txt`, as
`pip install` writes them), found by importlib.metadata exactly as an installed one would be.
"""

from __future__ import annotations

import sys
import textwrap

import polars as pl
import pytest

from ouroboros.chain.step import run_step
from ouroboros.config import GateConfig, StudyConfig
from ouroboros.generators import GeneratorError, available, create, load, plugin_families

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
    info = tmp_path / "mirror_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mirror-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [ouroboros.generators]
        mirror = mirror_plugin:MirrorCopula
        misnamed = mirror_plugin:Misnamed
        broken = mirror_plugin:NotAGenerator
        missing = mirror_plugin:Nowhere
        copula = mirror_plugin:MirrorCopula
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("mirror_plugin", None)


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
