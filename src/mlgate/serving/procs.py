"""Child processes that cannot outlive the process that started them.

`die_with_parent` runs in a child between fork and exec (`Popen(preexec_fn=...)`): Linux's
PR_SET_PDEATHSIG makes the kernel send it SIGTERM when its parent dies, even by SIGKILL, when no
clean-up code of the parent runs. `mlgate serve --env` starts its model servers this way. Its
own module (stdlib only), so a child's start does not import the serving stack.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
