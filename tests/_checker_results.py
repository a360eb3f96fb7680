"""What the exercise tests ask of a checker's result: its FAIL lines, or a clean pass."""


def failure_text(result):
    """Every FAIL line of a check, joined, so a test can assert which mistake was named."""
    return " | ".join(result.failures)


def assert_passes(result, capsys):
    """The check passed and printed no FAIL line; returns what it printed."""
    out = capsys.readouterr().out
    assert bool(result) is True
    assert "FAIL" not in out
    return out
