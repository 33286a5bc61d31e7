"""Fit progress: a run-log line every tenth of the epochs and at the last one, never one per epoch."""

from __future__ import annotations

import io

from assets.progress import FitProgress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_log_is_throttled_and_names_epoch_and_loss():
    lines: list[str] = []
    with FitProgress("s/gen_1", 100, lines.append, stream=io.StringIO()) as progress:
        for epoch in range(100):
            progress(epoch, {"loss": 1.0 / (epoch + 1)})
    assert len(lines) == 11  # epoch 1, then every 10th, and the last
    assert lines[0].startswith("s/gen_1 epoch 1/100 (") and "loss=1.0000" in lines[0]
    assert lines[-1].startswith("s/gen_1 epoch 100/100") and "loss=0.0100" in lines[-1]


def test_short_fits_and_fits_without_epochs():
    lines: list[str] = []
    with FitProgress("a", 3, lines.append, stream=io.StringIO()) as progress:
        for epoch in range(3):
            progress(epoch, {"loss": 0.5})
    assert [line.split(" (")[0] for line in lines] == ["a epoch 1/3", "a epoch 2/3", "a epoch 3/3"]
    lines.clear()
    with FitProgress("copula", None, lines.append, stream=io.StringIO()) as progress:
        progress(0, {"mean_abs_correlation": 0.1})
    assert len(lines) == 1 and lines[0].startswith("copula epoch 1 (")


def test_bar_only_on_a_terminal():
    quiet, tty = io.StringIO(), Tty()
    for stream in (quiet, tty):
        with FitProgress("g", 5, lambda _: None, stream=stream) as progress:
            for epoch in range(5):
                progress(epoch, {"loss": 0.25})
    assert quiet.getvalue() == ""
    assert "5/5" in tty.getvalue() and "loss=0.2500" in tty.getvalue()
