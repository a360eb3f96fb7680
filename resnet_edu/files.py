"""Writing files so that a crash can never leave half of one (the one atomic-write helper), and the
lock that lets one process of several fetch and decode the data while the others wait.

Checkpoints, the decoded data-set cache and ``metrics.json`` all go through :func:`atomic_write`.
"""

import contextlib
import os
import time
from pathlib import Path


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    The rename is atomic on POSIX and Windows: a reader sees the old file or the new one, never a
    half-written one, even if the process is killed midway (tests/test_files.py kills one). The
    temporary file is flushed to the disk before the rename, so a power cut cannot leave the new name
    on empty contents. The temporary name carries the process id, because the ranks of a torchrun job
    may write at the same moment. Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def one_at_a_time(lock_path, poll_seconds=0.2):
    """Hold an exclusive lock on ``lock_path`` for the ``with`` block; other processes asking for
    the same lock wait until it is released.

    POSIX (Linux, macOS): ``fcntl.flock``, which the operating system releases when the holder exits
    or is killed. Elsewhere (Windows): a lock file created with O_EXCL, waited for by polling, and
    taken over if its holder left it more than an hour ago (a crashed process).
    """
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        with open(lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another process holds it
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    while True:
        try:
            os.close(os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - lock_path.stat().st_mtime > 3600:
                    lock_path.unlink()
            time.sleep(poll_seconds)
    try:
        yield
    finally:
        lock_path.unlink(missing_ok=True)


ENV_RUNS = "RESNET_EDU_RUNS"


def runs_folder():
    """Where the notebooks write their runs: ``$RESNET_EDU_RUNS`` if set (the test command sets it to
    a temporary folder, so that running the tests never replaces a learner's checkpoints), else the
    repository's ``runs/`` (not committed) seen from ``notebooks/``, else ``runs/`` here (Colab)."""
    if os.environ.get(ENV_RUNS):
        return Path(os.environ[ENV_RUNS])
    return Path("../runs") if Path("../resnet_edu").is_dir() else Path("runs")
