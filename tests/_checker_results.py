"""What the exercise tests read from a checker's result: the ids of the mistakes it named, or a clean
pass. Never its words: those may be reworded without changing a test."""


def mistakes(result):
    """The ids of the failed checks, in order, each checked to be one its checker lists in MISTAKE_IDS."""
    unlisted = [mistake for mistake in result.mistakes if mistake not in result.known]
    assert not unlisted, f"ids not in the checker's MISTAKE_IDS: {unlisted}"
    return result.mistakes


def assert_names(result, *expected):
    """The check failed, and named every mistake in ``expected`` (maybe others too)."""
    found = mistakes(result)
    assert not result
    assert all(mistake in found for mistake in expected), f"expected {expected}, named {found}"


def assert_passes(result, capsys=None):
    """The check passed with no FAIL line; returns what it printed when given capsys."""
    assert mistakes(result) == []
    assert bool(result) is True
    if capsys is not None:
        return capsys.readouterr().out
    return None
