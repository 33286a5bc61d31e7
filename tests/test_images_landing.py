"""Landing of image files for an images config: each landed PNG is accepted into the real set or quarantined
with a reason that names it (ouroboros/images/landing.py, assets/images.py land_images)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from assets.images import build_real_image_assets, read_image_ledger
from ouroboros.images.data import from_frame
from ouroboros.images.landing import check_landed_image, landed_files
from resources import LakeResource
from resources.io_manager import LakeIOManager

CLASSES = list(range(10))
RNG = np.random.default_rng(0)


def png(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels)
    (img.convert(mode) if mode else img).save(path, format="PNG")
    return path


def grey(h: int = 8, w: int = 8) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def landing_with_every_fault(folder: Path) -> dict[str, str]:
    """One good PNG and one file per refusal; returns name -> the code expected (None: accepted)."""
    good = grey()
    png(folder / "3" / "good.png", good)
    png(folder / "3" / "rgb.png", grey(), mode="RGB")
    png(folder / "4" / "big.png", grey(16, 16))
    png(folder / "12" / "twelve.png", grey())
    png(folder / "cats" / "cat.png", grey())
    png(folder / "loose.png", grey())
    (folder / "5").mkdir()
    (folder / "5" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    whole = png(folder / "5" / "whole.tmp", grey()).read_bytes()
    (folder / "5" / "cut.png").write_bytes(whole[: len(whole) // 2])  # the header reads, the pixels do not
    (folder / "5" / "whole.tmp").unlink()
    (folder / "6").mkdir()
    (folder / "6" / "note.txt").write_text("hello")
    Image.fromarray(grey()).save(folder / "6" / "photo.png", format="JPEG")  # a JPEG named .png
    (folder / "7").mkdir()
    (folder / "7" / "link.png").symlink_to(folder / "3" / "good.png")
    (folder / "7" / ".hidden.png").write_bytes(b"")  # a writer's temp file waits
    return {"3/good.png": None, "3/rgb.png": "not_grayscale", "4/big.png": "wrong_size",
            "12/twelve.png": "unknown_label", "cats/cat.png": "unknown_label", "loose.png": "missing_label",
            "5/broken.png": "unreadable", "5/cut.png": "unreadable", "6/note.txt": "unsupported_format", "6/photo.png": "unsupported_format",
            "7/link.png": "unsafe_file"}


def test_each_landed_file_is_judged_with_a_reason_naming_it(tmp_path: Path):
    expected = landing_with_every_fault(tmp_path)
    files = landed_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in files) == sorted(expected)
    for path in files:
        judged = check_landed_image(path, tmp_path, CLASSES, (8, 8), set())
        code = expected[judged.name]
        if code is None:
            assert judged.accepted and judged.label == 3 and judged.pixels.shape == (8, 8)
            assert np.array_equal(judged.pixels, np.asarray(Image.open(path)))
        else:
            assert not judged.accepted and [p.code for p in judged.problems] == [code], judged
            assert repr(judged.name) in judged.problems[0].detail  # the reason names the file
    good = tmp_path / "3" / "good.png"
    again = check_landed_image(good, tmp_path, CLASSES, (8, 8), {check_landed_image(good, tmp_path, CLASSES, (8, 8),
                                                                                   set()).sha256})
    assert [p.code for p in again.problems] == ["duplicate_file"]


def materialise_real_images(lake: Path, landing: Path) -> dg.MaterializeResult:
    from ouroboros.config import PipelineConfig

    config = PipelineConfig.model_validate({"data": {"source": "sklearn:digits", "kind": "images", "target": "label"},
                                            "studies": [{"name": "s", "family": "vae", "generations": 1}]})
    real_images = build_real_image_assets(config, landing)[0]
    with dg.instance_for_test() as instance:
        result = dg.materialize([real_images], instance=instance,
                                resources={"lake": LakeResource(root=str(lake)),
                                           "io_manager": LakeIOManager(root=str(lake))})
        assert result.success
        return result


def test_landed_pngs_join_the_real_set_or_go_to_quarantine_with_their_reason(tmp_path: Path):
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    expected = landing_with_every_fault(landing)
    good = np.asarray(Image.open(landing / "3" / "good.png"))
    result = materialise_real_images(lake, landing)
    meta = result.asset_materializations_for_node("real_images")[0].metadata
    assert meta["dagster/row_count"].value == 1797 + 1
    assert meta["accepted_now"].value == 1 and meta["quarantined_now"].value == len(expected) - 1
    store = LakeResource(root=str(lake))
    real = from_frame(store.read_asset_table(["real_images"]))
    assert real.labels[-1] == 3 and np.array_equal(np.rint(real.images[-1] * 255).astype(np.uint8), good)
    assert [e["file"] for e in read_image_ledger(store)] == ["3/good.png"]
    # every refused file left landing for the quarantine, beside a reason file that names it and says why
    reasons = {json.loads(p.read_text())["file"]: json.loads(p.read_text())
               for p in store.quarantine_dir().glob("*.reason.json")}
    assert {name: r["reasons"][0]["code"] for name, r in reasons.items()} == {
        n: c for n, c in expected.items() if c is not None}
    assert all(os.path.lexists(r["quarantined_file"]) and r["file"] in r["summary"] for r in reasons.values())
    assert [p.name for p in landing.rglob("*") if p.is_file() or p.is_symlink()] == [".hidden.png"]
    # the same image landed again is a duplicate: quarantined, the real set unchanged
    png(landing / "3" / "again.png", good)
    result = materialise_real_images(lake, landing)
    assert result.asset_materializations_for_node("real_images")[0].metadata["dagster/row_count"].value == 1798
    assert any(json.loads(p.read_text())["file"] == "3/again.png"
               and json.loads(p.read_text())["reasons"][0]["code"] == "duplicate_file"
               for p in store.quarantine_dir().glob("*.reason.json"))
