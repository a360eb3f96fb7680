"""resnet_edu.files: a write killed midway leaves the previous file whole, and of several processes
loading CIFAR-10 into one cache, one fetches and decodes while the others wait."""

import os
import signal
import subprocess
import sys
import textwrap

import torch
from _tiny_cifar import write_tiny_tarball

from resnet_edu.checkpoint import load_checkpoint, save_checkpoint

TESTS = os.path.dirname(os.path.abspath(__file__))


def python(code, *args, **kwargs):
    """Start ``code`` in a new Python process (the tests folder importable), stdout piped."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=TESTS), **kwargs)


def test_a_save_killed_midway_leaves_the_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, weights=torch.zeros(100_000), epoch=1)
    writer = python("""
        import io, sys, time
        import torch
        from resnet_edu.checkpoint import save_checkpoint

        real_save = torch.save

        def slow_save(state, file):  # writes half the bytes, then stalls: the moment to be killed
            buffer = io.BytesIO()
            real_save(state, buffer)
            data = buffer.getvalue()
            with open(file, "wb") as out:
                out.write(data[:len(data) // 2])
                out.flush()
                print("half written", flush=True)
                time.sleep(120)
                out.write(data[len(data) // 2:])

        torch.save = slow_save
        save_checkpoint(sys.argv[1], weights=torch.ones(100_000), epoch=2)
    """, path)
    try:
        assert writer.stdout.readline().strip() == "half written", writer.stderr.read()
        half = path.with_name(f"{path.name}.tmp{writer.pid}")
        assert half.exists() and half.stat().st_size > 0  # the new checkpoint really was half on disk
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert writer.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.zeros(100_000))


LOADER = """
    import json, os, sys, time
    from pathlib import Path
    from resnet_edu import dataset
    from _tiny_cifar import tiny_cifar

    cache, log, barrier = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

    def stand_in_download(cache_dir, verbose, download=True):
        # like torchvision's: fetch (slowly) only what is not there yet
        began = time.time()
        folder = cache_dir / "torchvision" / dataset.TORCHVISION_FOLDER
        fetched = download and not folder.exists()
        if fetched:
            time.sleep(1.0)
            folder.mkdir(parents=True)
        with open(log, "a") as f:
            f.write(json.dumps(dict(pid=os.getpid(), download=download, fetched=fetched, began=began,
                                    ended=time.time())) + "\\n")
        return tiny_cifar()

    dataset._download_with_torchvision = stand_in_download
    real_read = dataset.read_image_folder

    def slow_read(source):  # decoding all of CIFAR-10 takes seconds: long enough to collide
        time.sleep(1.0)
        return real_read(source)

    dataset.read_image_folder = slow_read
    (barrier / str(os.getpid())).touch()  # both processes ask at the same moment
    while len(list(barrier.iterdir())) < 2:
        time.sleep(0.01)
    data = dataset.load_cifar10(os.environ.get("TARBALL") or None, cache_dir=cache)
    print("loaded", len(data.train_labels), flush=True)
"""


def two_loaders(tmp_path, tarball=None):
    env_extra = {"TARBALL": str(tarball)} if tarball else {}
    (tmp_path / "barrier").mkdir()
    os.environ.update(env_extra)
    try:
        processes = [python(LOADER, tmp_path / "cache", tmp_path / "log.jsonl", tmp_path / "barrier") for _ in range(2)]
    finally:
        for key in env_extra:
            del os.environ[key]
    results = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), results
    return [out for out, _ in results]


def test_of_two_processes_one_downloads_and_the_other_waits(tmp_path, monkeypatch):
    """The ranks of a torchrun job all call load_cifar10 before the process group exists; on a fresh
    machine they must not download into the same folder at once."""
    import json

    monkeypatch.delenv("RESNET_EDU_DATA", raising=False)
    two_loaders(tmp_path)
    calls = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(calls) == 2 and sum(c["fetched"] for c in calls) == 1
    first, second = sorted(calls, key=lambda c: c["began"])
    assert first["fetched"] and second["began"] >= first["ended"]  # the second waited for the first
    assert second["download"] is False  # and then read what the first had fetched


def test_of_two_processes_one_decodes_and_the_other_reads_its_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("RESNET_EDU_DATA", raising=False)
    outputs = two_loaders(tmp_path, write_tiny_tarball(tmp_path))
    assert all("loaded 24" in out for out in outputs)
    assert sum(out.count("Decoding CIFAR-10") for out in outputs) == 1
    assert len(list((tmp_path / "cache").glob("cifar10-*.pt"))) == 1
