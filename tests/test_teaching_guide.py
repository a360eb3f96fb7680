"""The teacher's guide, docs/teaching.md: what tools/teaching_guide.py writes, up to date with its
hand-written source, the notebooks' stored outputs and the checkers; every mistake id of every
checker listed; every notebook with its sections; lesson plans whose minutes add up to 90.

    .venv/bin/python -m pytest tests/test_teaching_guide.py -q
"""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import teaching_guide  # noqa: E402  (tools/ is not a package)
from resnet_edu.exercises import mistake_catalogue, training, why_residuals_work  # noqa: E402

GUIDE = teaching_guide.GUIDE
NOTEBOOK_NAMES = [path.stem for path in teaching_guide.notebook_paths()]
SECTIONS = ["### Learning goals", "### In class: run live, show stored", "### Discussion questions",
            "### Exercises and the mistakes their checkers recognise"]


def committed_guide():
    return GUIDE.read_text(encoding="utf-8")


def notebook_part(text, name):
    """The part of the guide about one notebook: from its heading to the next "## " heading."""
    heading = f"## {teaching_guide.title(teaching_guide.load_notebook(name))}\n"
    assert heading in text, f"the guide has no heading {heading.strip()!r}"
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def listed_ids(text):
    return set(re.findall(r"^- `([^`]+)`:", text, re.M))


# ---------------------------------------------------------------------------------------- up to date


def test_the_guide_is_what_the_tool_writes():
    assert teaching_guide.main(["--check"]) == 0, "run: python tools/teaching_guide.py"


def test_check_fails_on_a_stale_guide(tmp_path, monkeypatch):
    stale = tmp_path / "teaching.md"
    stale.write_text(committed_guide().replace("Learning goals", "Goals", 1), encoding="utf-8")
    monkeypatch.setattr(teaching_guide, "GUIDE", stale)
    assert teaching_guide.main(["--check"]) == 1


def test_a_notebook_without_its_part_in_the_source_stops_the_tool(tmp_path, monkeypatch):
    source = tmp_path / "teaching_source.md"
    text = teaching_guide.SOURCE.read_text(encoding="utf-8")
    source.write_text(text.replace("{{notebook 04_resnet50_bottleneck}}", ""), encoding="utf-8")
    monkeypatch.setattr(teaching_guide, "SOURCE", source)
    with pytest.raises(SystemExit, match="04_resnet50_bottleneck"):
        teaching_guide.render()


# ---------------------------------------------------------------------------------------- mistake ids


def test_every_mistake_id_of_every_checker_module_is_listed():
    listed = listed_ids(committed_guide())
    for module, ids in mistake_catalogue().items():
        missing = sorted(set(ids) - listed)
        assert not missing, f"{module}'s MISTAKE_IDS has ids the guide does not list: {missing}"


def test_every_id_a_checker_reports_with_is_listed_in_its_notebooks_part():
    text = committed_guide()
    shared = {k for group in teaching_guide.shared_groups().values() for k in group}
    for name, module in zip(NOTEBOOK_NAMES, teaching_guide.checker_modules()):
        part = notebook_part(text, name)
        for checker in teaching_guide.checkers_of(module):
            assert f"`{checker.__name__}`" in part, f"{name}: the guide does not name {checker.__name__}"
            ids = set(teaching_guide.known_ids(module, checker))
            assert ids, f"{checker.__name__}: no mistake ids found in its source"
            assert ids <= listed_ids(part) | shared, f"{checker.__name__}: {sorted(ids - listed_ids(part) - shared)}"


def test_an_id_added_to_a_module_catalogue_fails_the_check(monkeypatch):
    monkeypatch.setitem(training.MISTAKE_IDS, "fake-mistake-for-the-test", "a mistake no guide has seen")
    assert "- `fake-mistake-for-the-test`: a mistake no guide has seen" in teaching_guide.render()
    assert teaching_guide.main(["--check"]) == 1


def test_an_id_added_to_a_checkers_catalogue_is_listed_under_that_checker(monkeypatch):
    monkeypatch.setitem(why_residuals_work.TWIN_MISTAKES, "fake-twin-mistake", "a mistake of the plain twin")
    part = notebook_part(teaching_guide.render(), "06_why_residuals_work")
    block = part.split("`check_plain_twin`", 1)[1].split("\n\n", 1)[0]
    assert "- `fake-twin-mistake`: a mistake of the plain twin" in block
    assert teaching_guide.main(["--check"]) == 1


def test_the_exercises_are_named_by_the_notebooks_headings():
    part = notebook_part(committed_guide(), "01_residual_block")
    assert "**Exercise 1: fix this block**: `check_basic_block`" in part
    assert "**Exercise 2: predict, then check · 2b. A zero-initialised residual stack**" in part
    part = notebook_part(committed_guide(), "05_train_on_gpu")
    assert "**Exercise 3: a batched horizontal flip**: `check_random_flip`" in part


# ---------------------------------------------------------------------------------------- sections


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_every_notebook_has_its_sections(name):
    part = notebook_part(committed_guide(), name)
    positions = [part.find(section) for section in SECTIONS]
    assert -1 not in positions, f"{name}: missing {[s for s, p in zip(SECTIONS, positions) if p == -1]}"
    assert positions == sorted(positions), f"{name}: the sections are out of order"
    goals = part.split(SECTIONS[0], 1)[1].split("###", 1)[0]
    assert 3 <= len(re.findall(r"^- ", goals, re.M)) <= 5, f"{name}: 3 to 5 learning goals"
    questions = part.split(SECTIONS[2], 1)[1].split("###", 1)[0]
    numbered = re.split(r"^\d\. ", questions, flags=re.M)[1:]
    assert 2 <= len(numbered) <= 3, f"{name}: two or three discussion questions"
    for question in numbered:
        assert re.search(r"\*\*\n\s+\S", question), f"{name}: a question without an answer"
        assert "(notebook 0" in question, f"{name}: an answer that cites no section"
    assert "**Stored run time**" in part


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_the_run_time_is_the_stored_one_with_its_hardware(name):
    run = teaching_guide.run_time(teaching_guide.load_notebook(name))
    assert run.seconds > 0 and run.hardware
    row = next(line for line in committed_guide().splitlines() if line.startswith(f"| {name} |"))
    assert f"| {teaching_guide.in_words(run.seconds)} |" in row and run.hardware in row
    if not run.on_gpu and not teaching_guide.gpu_results():
        assert "| not measured |" in row


def test_a_cited_section_must_exist():
    cited = teaching_guide.cite("01 5")
    assert cited == '(notebook 01, section "5. Measured: the gradient that reaches the first layer")'
    with pytest.raises(SystemExit):
        teaching_guide.cite("01 99")


def test_every_number_in_the_hand_written_text_is_in_a_notebook(tmp_path, monkeypatch):
    assert teaching_guide.unsupported_numbers() == []
    source = tmp_path / "teaching_source.md"
    source.write_text(teaching_guide.SOURCE.read_text(encoding="utf-8") + "\nIt reaches 97.31% in 1,234 s.\n",
                      encoding="utf-8")
    monkeypatch.setattr(teaching_guide, "SOURCE", source)
    assert teaching_guide.unsupported_numbers() == ["1,234", "97.31"]


# ---------------------------------------------------------------------------------------- lesson plans


def minute_tables(text):
    """The minutes of each Markdown table with a "minutes" column, and its total row's figure."""
    tables = []
    for block in re.findall(r"(?:^\|.*\n)+", text, re.M):
        rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in block.splitlines()]
        if "minutes" not in rows[0]:
            continue
        column = rows[0].index("minutes")
        *parts, total = rows[2:]
        assert "**total**" in total, "a minutes table without its total row"
        tables.append(([int(row[column]) for row in parts], int(total[column].strip("*"))))
    return tables


def test_the_90_minute_class_adds_up_to_90():
    plan = committed_guide().split("## Lesson plan: one 90-minute class", 1)[1].split("\n## ", 1)[0]
    (minutes, total), = minute_tables(plan)
    assert sum(minutes) == total == 90


def test_every_class_of_the_five_class_module_adds_up_to_90():
    plan = committed_guide().split("## Lesson plan: a five-class module", 1)[1]
    assert re.findall(r"^\*\*Class (\d)", plan, re.M) == ["1", "2", "3", "4", "5"]
    tables = minute_tables(plan)
    assert len(tables) == 4  # class 1 is the 90-minute class
    for minutes, total in tables:
        assert sum(minutes) == total == 90
