"""The command line: a mistake ends with one line that names the flag, exit code 2, no traceback; a
run is never lost (a folder holding one is refused, --resume continues it as it was configured), and
after Ctrl-C every message says what is on disk, in the command line's terms."""

import json
import os
import subprocess
import sys
import time

import pytest
from _tiny_cifar import write_tiny_tarball

from resnet_edu.checkpoint import load_checkpoint


def run_cli(*flags, cache):
    return subprocess.run([sys.executable, "-m", "resnet_edu", "--quick", "--no-progress", "--device", "cpu",
                           *flags], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, RESNET_EDU_CACHE=str(cache)))


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be at least 1; got 0"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--data", "no/such/folder"], "CIFAR-10 was not found at no/such/folder (--data): no such file or folder"),
    (["--resume", "--out", "{tmp}/empty", "--batch-size", "8"],
     "--resume found no checkpoint in --out {tmp}/empty ({tmp}/empty/checkpoint.pt does not exist). To start a "
     "new run there, leave out --resume"),
    (["--batch-size", "64"], "--batch-size 64 leaves not one full batch per epoch: there are 24 training images."),
])
def test_a_mistake_ends_with_one_line_naming_the_flag(tmp_path, flags, message):
    result = run_cli(*[f.format(tmp=tmp_path) for f in flags] + ["--data", str(write_tiny_tarball(tmp_path))]
                     if "--data" not in flags else flags, cache=tmp_path / "cache")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: " + message.format(tmp=tmp_path) in result.stderr.replace("\n", " ")


def test_a_damaged_tarball_is_named(tmp_path):
    bad = tmp_path / "cifar.tar.gz"
    bad.write_bytes(b"this is not a tarball")
    result = run_cli("--data", str(bad), cache=tmp_path / "cache")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot read the tarball {bad}" in result.stderr and "damaged" in result.stderr


def test_command_line_trains_and_writes_metrics(tmp_path, capsys, monkeypatch):
    from resnet_edu.cli import main

    monkeypatch.setenv("RESNET_EDU_CACHE", str(tmp_path / "cache"))
    tarball = write_tiny_tarball(tmp_path, train_per_class=16, test_per_class=4)
    out = tmp_path / "run"
    code = main(["--quick", "--data", str(tarball), "--epochs", "2", "--batch-size", "16", "--lr", "0.05",
                 "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "recipe 'quick'" in printed and "48 training and 12 test images" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and metrics["status"] == "finished"
    assert 0 <= metrics["test_acc"] <= 1 and metrics["config"]["stem"] == "imagenet"
    assert (out / "checkpoint.pt").exists()


def test_the_full_recipe_on_a_cpu_says_how_long_it_would_take_before_it_starts(tmp_path):
    result = run_cli("--data", str(write_tiny_tarball(tmp_path)), "--recipe", "full", "--epochs", "1",
                     "--batch-size", "16", "--out", str(tmp_path / "run"), cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    warning = next(line for line in result.stdout.splitlines() if "warning" in line)
    assert "the cifar stem on this CPU trains at about" in warning and "would take about" in warning
    assert result.stdout.index("would take about") < result.stdout.index("Done (finished): 1 of 1 epochs")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny tarball of 48 training images, an empty cache, and ``cli(*flags)`` that runs the command
    line in this process and returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("RESNET_EDU_CACHE", str(tmp_path / "cache"))
    tarball = write_tiny_tarball(tmp_path, train_per_class=16, test_per_class=4)
    return tarball


def cli(capsys, *flags):
    from resnet_edu.cli import main

    try:
        code = main(["--no-progress", "--device", "cpu", *map(str, flags)])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


QUICK = ("--quick", "--batch-size", "16", "--lr", "0.05")


def test_an_existing_file_as_out_is_refused_before_any_training(tmp_path, tiny, capsys, monkeypatch):
    """Measured before: it printed `output .../regular_file/`, trained a whole epoch, then a traceback."""
    from resnet_edu import cli as cli_module

    monkeypatch.setattr(cli_module, "fit", lambda *a, **k: pytest.fail("training started"))
    regular = tmp_path / "regular_file"
    regular.write_text("notes")
    for out in (regular, regular / "run"):
        code, out_text, err = cli(capsys, *QUICK, "--data", tiny, "--out", out)
        assert code == 2 and "Traceback" not in err and out_text == ""
        assert err.count("\n") == 1 and str(regular) in err
    assert "is a file, not a folder" in cli(capsys, *QUICK, "--data", tiny, "--out", regular)[2]
    assert "cannot write into --out" in cli(capsys, *QUICK, "--data", tiny, "--out", regular / "run")[2]
    assert regular.read_text() == "notes"


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path, tiny, capsys):
    """Measured before: training again into a run's folder replaced its checkpoint without a word."""
    out = tmp_path / "run"
    assert cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)[0] == 0
    before = (out / "checkpoint.pt").read_bytes()
    code, _, err = cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)
    assert code == 2 and (out / "checkpoint.pt").read_bytes() == before
    assert f"--out {out} already holds a run (finished after epoch 1 of 1, test accuracy" in err
    assert "Continue it with --resume" in err and "another --out" in err and "replace it with --overwrite" in err
    code, out_text, _ = cli(capsys, *QUICK, "--epochs", "1", "--seed", "3", "--data", tiny, "--out", out, "--overwrite")
    assert code == 0 and "Done (finished)" in out_text
    assert load_checkpoint(out / "checkpoint.pt")["config"]["seed"] == 3


def test_resume_continues_with_the_stored_configuration_and_names_a_disagreement(tmp_path, tiny, capsys):
    """Measured before: --resume without repeating --quick ran the full recipe's CPU probe, then a raw
    `RuntimeError: size mismatch for conv1.weight`."""
    out = tmp_path / "run"
    assert cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)[0] == 0
    code, _, err = cli(capsys, "--resume", "--out", out, "--data", tiny, "--epochs", "2", "--batch-size", "8",
                       "--stem", "imagenet")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "these flags disagree with it: --batch-size 8 (the checkpoint has 16)." in err
    assert "--stem" not in err.split("disagree")[1].split(".")[0]  # given again, and agreeing
    code, _, err = cli(capsys, "--resume", "--out", out, "--data", tiny)
    assert code == 2 and "already holds epoch 1 of 1" in err and "give --epochs more than 1" in err
    code, out_text, err = cli(capsys, "--resume", "--out", out, "--data", tiny, "--epochs", "2")
    assert code == 0, err
    assert "would take about" not in out_text  # no probe of the full recipe
    assert "Continuing resnet18 (imagenet stem) on CIFAR-10 after epoch 1 of 2" in out_text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_done"] == 2 and metrics["config"]["stem"] == "imagenet"
    assert metrics["config"]["batch_size"] == 16


def test_resume_refuses_other_data_than_the_run_had(tmp_path, tiny, capsys):
    out = tmp_path / "run"
    assert cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)[0] == 0
    code, _, err = cli(capsys, "--resume", "--out", out, "--data", tiny, "--epochs", "2", "--train-subset", "32")
    assert code == 2 and "trained on 48 training images, but the data given now has 32" in err


def ctrl_c_at(monkeypatch, epoch, step):
    """Press Ctrl-C (raise KeyboardInterrupt) at ``step`` of ``epoch`` (both from 1), as a learner would."""
    from resnet_edu.progress import Reporter

    position = {"epoch": 0, "step": 0}
    start_epoch, real_step = Reporter.start_epoch, Reporter.step

    def start(self, e, steps):
        position.update(epoch=e + 1, step=0)
        start_epoch(self, e, steps)

    def one_step(self):
        position["step"] += 1
        if (position["epoch"], position["step"]) == (epoch, step):
            time.sleep(0.2)  # some training time, which the messages must count
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(Reporter, "start_epoch", start)
    monkeypatch.setattr(Reporter, "step", one_step)


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved(tmp_path, tiny, capsys, monkeypatch):
    """Measured before: it said runs/sigint/checkpoint.pt was written (none was), advised `resume=True
    (command line: --resume)`, and reported 0.0 s of training after 36 s."""
    out = tmp_path / "run"
    ctrl_c_at(monkeypatch, epoch=1, step=2)
    code, printed, _ = cli(capsys, *QUICK, "--epochs", "2", "--data", tiny, "--out", out)
    assert code == 130 and not (out / "checkpoint.pt").exists()
    assert "resume=True" not in printed and "--resume" not in printed
    assert "no checkpoint has been written yet, so there is nothing to resume" in printed
    assert "checkpoint none written (no epoch finished)" in printed
    seconds = json.loads((out / "metrics.json").read_text())["train_seconds"]
    assert seconds >= 0.2 and f"{seconds:.1f} s of training" in printed
    monkeypatch.undo()
    monkeypatch.setenv("RESNET_EDU_CACHE", str(tmp_path / "cache"))
    assert cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)[0] == 0  # nothing to protect


def test_ctrl_c_later_names_the_checkpoint_and_the_command_that_continues(tmp_path, tiny, capsys, monkeypatch):
    out = tmp_path / "run"
    ctrl_c_at(monkeypatch, epoch=2, step=1)
    code, printed, _ = cli(capsys, *QUICK, "--epochs", "2", "--data", tiny, "--out", out)
    assert code == 130 and load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    command = f"python -m resnet_edu --out {out} --resume --data {tiny}"
    assert f"the checkpoint {out / 'checkpoint.pt'} holds epoch 1. Continue with {command}." in printed
    assert "resume=True" not in printed
    monkeypatch.undo()
    monkeypatch.setenv("RESNET_EDU_CACHE", str(tmp_path / "cache"))
    code, printed, err = cli(capsys, *command.split()[3:])
    assert code == 0, err
    assert json.loads((out / "metrics.json").read_text())["epochs_done"] == 2


def test_continuing_a_checkpoint_into_a_folder_holding_another_run_is_refused(tmp_path, tiny, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        assert cli(capsys, *QUICK, "--epochs", "1", "--data", tiny, "--out", out)[0] == 0
    before = (second / "checkpoint.pt").read_bytes()
    code, _, err = cli(capsys, "--resume", first / "checkpoint.pt", "--out", second, "--epochs", "2", "--data", tiny)
    assert code == 2 and f"--out {second} already holds another run" in err and "give another --out" in err
    assert (second / "checkpoint.pt").read_bytes() == before
