"""Fault points: named places where the fault-injection tests (tests/test_faults.py) make this process fail.

Like the failpoints of TiKV or FoundationDB's simulation: the code that writes calls `hit(name)` at the
moment a crash hurts most (a temp file written but not yet renamed, a Delta commit made but its landed file
not yet moved), and a test sets the environment variable `OUROBOROS_FAULTPOINT` to that name in the process
it starts. Unset (always, outside those tests), `hit` is one dictionary lookup and returns.

`OUROBOROS_FAULTPOINT=<name>` kills the process with SIGKILL (kill -9: no cleanup, no `finally`, no atexit),
after one line on stderr naming the point; `<name>=enospc` raises `OSError(ENOSPC)` there instead, as a full
disk would (a real full filesystem cannot be made in a test without root).

Names in use: `write:<file name>` (every atomic file write of the lake, after the temp file is written and
before the rename), `replace_dir:<folder name>` (a generator's folder, built aside, before the swap),
`real_table.append` (before the Delta commit of a landed file), `real_table.committed` (after it, before the
file leaves landing).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

ENV = "OUROBOROS_FAULTPOINT"


def hit(name: str, path: object = None) -> None:
    """Fail here if `OUROBOROS_FAULTPOINT` names this point; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, action = wanted.partition("=")
    if point != name:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (fault point {name})", None if path is None
                      else str(path))
    sys.stderr.write(f"ouroboros fault point {name}: SIGKILL to process {os.getpid()}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
