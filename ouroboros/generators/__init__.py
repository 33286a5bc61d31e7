"""Generator families behind one interface: `create(family, **params)` and `load(path)`."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
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


def _class_for(family: str) -> type[Generator]:
    if family not in FAMILIES:
        raise GeneratorError(f"unknown generator family {family!r}; choose one of {sorted(FAMILIES)}")
    module, name = FAMILIES[family].split(":")
    return getattr(importlib.import_module(module), name)


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


__all__ = ["FAMILIES", "Generator", "GeneratorError", "ProgressCallback", "create", "load", "register"]
