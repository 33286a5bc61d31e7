"""Generator families behind one interface: `create(family, **params)` and `load(path)`.

Families come from three places, looked up in this order: the built-in ones (`FAMILIES`), those added in-process
with `register`, and those other installed packages declare under the entry-point group `ouroboros.generators`
(docs/plugins.md). A built-in or registered name wins over a plugin's of the same name, so installing a package
can never silently replace a family a config already uses.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ouroboros.generators.base import META_FILE, Generator, GeneratorError, ProgressCallback
from ouroboros.identifiers import WithIdentifiers

# family -> "module:Class"; imported lazily so using the copula never pays for importing torch
FAMILIES: dict[str, str] = {
    "copula": "ouroboros.generators.copula:GaussianCopula",
    "gan": "ouroboros.generators.gan:TabularGAN",
    "vae": "ouroboros.generators.vae:TabularVAE",
    "diffusion": "ouroboros.generators.diffusion:TabularDiffusion",
    "gaussian": "ouroboros.collapse.gaussian:GaussianReference",  # the reference model of the collapse study
}


ENTRY_POINT_GROUP = "ouroboros.generators"


def plugin_families() -> dict[str, str]:
    """Families installed packages declare under the entry-point group `ouroboros.generators`: name -> target."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Every family a config may name: plugins first, then built-in and registered ones over them."""
    return {**plugin_families(), **FAMILIES}


def is_family(name: str) -> bool:
    return name in FAMILIES or name in plugin_families()


def _class_for(family: str) -> type[Generator]:
    builtin = family in FAMILIES
    target = FAMILIES.get(family) or plugin_families().get(family)
    if target is None:
        raise GeneratorError(f"unknown generator family {family!r}; choose one of {sorted(available())} (a package "
                             f"can add one under the entry-point group {ENTRY_POINT_GROUP!r}: docs/plugins.md)")
    where = f"family {family!r}" if builtin else f"plugin family {family!r} (entry point {target!r})"
    module, _, name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise GeneratorError(f"{where}: cannot import {target!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise GeneratorError(f"{where}: {target!r} is not a subclass of ouroboros.generators.Generator")
    if getattr(cls, "family", None) != family:
        # saved generators name their family in their metadata; load() must find the same class again
        raise GeneratorError(f"{where}: class {target!r} says family = {getattr(cls, 'family', None)!r}; set it to "
                             f"{family!r}, the name it is registered under")
    return cls


def register(family: str, target: str) -> None:
    """Add a generator family, `target` being "package.module:Class" of a `Generator` subclass."""
    if ":" not in target:
        raise GeneratorError(f"register({family!r}, {target!r}): target must look like 'package.module:Class'")
    FAMILIES[family] = target


def create(family: str, id_columns: Sequence[str] = (), **params: Any) -> WithIdentifiers:
    """Make an unfitted generator of `family` with validated hyperparameters (the family's own object is `.inner`).

    Identifier and free-text columns (declared in `id_columns` or detected) are regenerated, never modelled.
    """
    return WithIdentifiers(_class_for(family)(**params), id_columns)


def load(path: str | Path, device: str | None = None) -> WithIdentifiers:
    """Load a generator saved with `Generator.save(path)`."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.exists():
        raise GeneratorError(f"{path}: not a saved generator (no {META_FILE}); pass the folder given to save()")
    meta = json.loads(meta_path.read_text())
    return WithIdentifiers.around_loaded(_class_for(meta["family"]).restore(path, meta, device=device), path)


__all__ = ["ENTRY_POINT_GROUP", "FAMILIES", "Generator", "GeneratorError", "ProgressCallback", "available", "create",
           "is_family", "load", "plugin_families", "register"]
