"""Writing files so that a crash can never leave half of one: the one atomic-write helper.

Checkpoints, the decoded data-set cache and ``metrics.json`` all go through :func:`atomic_write`.
"""

import os
from pathlib import Path


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    The rename is atomic on POSIX and Windows: a reader sees the old file or the new one, never a
    half-written one. The temporary name carries the process id, because the ranks of a torchrun
    job may write at the same moment. Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
