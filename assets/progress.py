"""Progress of a generator fit, fed by the generators' per-epoch callback.

In a terminal: one progress bar per fit, with epoch and loss (tqdm on stderr; off when stderr is not a
terminal, so captured logs get no carriage-return noise). In the Dagster run log: a line at every tenth of
the epochs and at the last one, never one per step, so a long fit stays readable in the UI.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from tqdm import tqdm

LOG_FRACTION = 0.1  # a run-log line every tenth of the fit


class FitProgress:
    """Callable `(epoch, losses)`; `close()` when the fit ends (or use it as a context manager)."""

    def __init__(self, label: str, total: int | None, log: Callable[[str], None], stream=None) -> None:
        self.label, self.total, self.log = label, total, log
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.last_logged: int | None = None
        self.last: tuple[int, dict[str, float]] | None = None
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.bar = tqdm(total=total, desc=label, unit="epoch", file=self.stream, disable=not isatty, leave=True,
                        dynamic_ncols=True)

    def __call__(self, epoch: int, losses: dict[str, float]) -> None:
        self.last = (epoch, losses)
        text = ", ".join(f"{k}={v:.4f}" for k, v in losses.items())
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(1)
        if self._due(epoch):
            self._log(epoch, text)

    def _due(self, epoch: int) -> bool:
        if self.total is None or self.total <= 0:
            return self.last_logged is None
        if epoch + 1 >= self.total or self.last_logged is None:
            return True
        step = max(1, round(self.total * LOG_FRACTION))
        return epoch - self.last_logged >= step

    def _log(self, epoch: int, text: str) -> None:
        self.last_logged = epoch
        where = f"epoch {epoch + 1}/{self.total}" if self.total else f"epoch {epoch + 1}"
        self.log(f"{self.label} {where} ({time.perf_counter() - self.started:.1f} s): {text}")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> FitProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
