"""Checking an image file landed for an images config before it may join the real set.

A PNG lands in `<landing>/<label>/<name>.png`: its folder names its class. It is accepted only when it is a
regular file, decodes as PNG, is 8-bit grey (mode L), has the real images' size and its label is one of the
real set's classes; otherwise it is quarantined whole with `Problem`s (ouroboros.landing's record, the codes
below) whose detail names the file and what to do. Nothing is resized, converted or relabelled: an image that
cannot join the real set unchanged is refused, as a table file is.

Codes: unsafe_file (a link or special file), unsupported_format (not a .png, or not PNG inside), unreadable
(does not decode), missing_label (not in a class folder), unknown_label (a folder that is no known class),
wrong_size, not_grayscale, duplicate_file (the same bytes were already accepted).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ouroboros.landing import Problem, file_sha256, is_landing_candidate

MAX_PNG_BYTES = 1 << 20  # an 8x8 grey PNG is under 1 KiB; anything near this is not one


@dataclass(frozen=True)
class LandedImage:
    """A landed file judged: its name relative to the landing folder, and either pixels or problems."""

    name: str
    sha256: str | None
    label: int | None
    pixels: np.ndarray | None  # (h, w) uint8, the bytes as landed
    problems: tuple[Problem, ...]

    @property
    def accepted(self) -> bool:
        return not self.problems


def landed_files(folder: Path) -> list[Path]:
    """Files waiting in the landing folder and one level of class folders below it, oldest name first; hidden
    files and writers' temp files wait (ouroboros.landing.is_landing_candidate)."""
    if not folder.is_dir():
        return []
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            if is_landing_candidate(entry.name):
                out += [p for p in sorted(entry.iterdir()) if is_landing_candidate(p.name)
                        and (p.is_symlink() or not p.is_dir())]
        elif is_landing_candidate(entry.name):
            out.append(entry)
    return out


def check_landed_image(path: Path, folder: Path, classes: list[int], shape: tuple[int, int],
                       accepted: set[str]) -> LandedImage:
    """Judge one landed file against the real set's `classes` and image `shape` and the hashes of the images
    already `accepted`."""
    from PIL import Image, UnidentifiedImageError

    name = path.relative_to(folder).as_posix()
    where = f"landed image {name!r}"

    def refused(problem: Problem, sha: str | None = None, label: int | None = None) -> LandedImage:
        return LandedImage(name, sha, label, None, (problem,))

    if path.is_symlink() or not path.is_file():
        return refused(Problem("unsafe_file", f"{where} is a link or not a regular file; links are not followed: "
                                              "land the file itself"))
    if path.suffix.lower() != ".png":
        return refused(Problem("unsupported_format", f"{where}: an images config lands PNG files only "
                                                     "(<landing>/<label>/<name>.png)"))
    size = path.stat().st_size
    if size > MAX_PNG_BYTES:
        return refused(Problem("unsupported_format", f"{where} is {size:,} bytes, not an {shape[0]}x{shape[1]} "
                                                     f"grey PNG (at most {MAX_PNG_BYTES:,} bytes)", observed=size))
    sha = file_sha256(path)
    if len(Path(name).parts) != 2:
        return refused(Problem("missing_label", f"{where} is not in a class folder: move it to <landing>/<label>/ "
                                                f"with <label> one of {classes}"), sha)
    folder_name = Path(name).parts[0]
    try:
        label = int(folder_name)
    except ValueError:
        label = None
    if label not in classes:
        return refused(Problem("unknown_label", f"{where}: folder {folder_name!r} is not a class of the real set "
                                                f"(classes: {classes}); move it to the folder of its class",
                               column="label", observed=folder_name), sha)
    if sha in accepted:
        return refused(Problem("duplicate_file", f"{where}: the same bytes were already accepted into the real "
                                                 "set; not added twice"), sha, label)
    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format != "PNG":
                return refused(Problem("unsupported_format", f"{where} holds a {img.format} image, not a PNG: "
                                                             "save it as PNG", observed=img.format), sha, label)
            # the size is in the header: checked before the pixels are decoded (no decompression bomb is read)
            if img.size != (shape[1], shape[0]):
                return refused(Problem("wrong_size", f"{where} is {img.size[0]}x{img.size[1]} pixels, the real "
                                                     f"images are {shape[1]}x{shape[0]}; resize it first",
                                       observed=list(img.size)), sha, label)
            if img.mode != "L":
                return refused(Problem("not_grayscale", f"{where} has mode {img.mode}, not 8-bit grey: save it "
                                                        "as grey (PIL mode L) without alpha", observed=img.mode),
                               sha, label)
            img.load()
            pixels = np.asarray(img, dtype=np.uint8).copy()
    except UnidentifiedImageError:
        return refused(Problem("unreadable", f"{where} is not an image that decodes (damaged or cut short?); land "
                                             "it again"), sha, label)
    except (OSError, SyntaxError, ValueError) as exc:  # a PNG whose header reads but whose pixels do not
        return refused(Problem("unreadable", f"{where} does not decode as PNG ({exc}); land it again"), sha, label)
    return LandedImage(name, sha, label, pixels, ())
