"""One formatter and one line limit, checked: `ruff format` and `ruff check`, configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["ruff format", "ruff check"])
def test_the_code_is_formatted_and_within_the_line_limit(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command, "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"ruff {' '.join(command)} . (run `ruff format . && ruff check --fix .`):\n{result.stdout}{result.stderr}"
    )


def test_no_source_file_holds_a_control_character():
    """A docstring written through a non-raw string turns "\\bar" into a backspace and "ar"
    (it happened to SiLU's): the rendered math then loses its bars without an error."""
    files = [p for folder in ("minigen", "tests", "notebooks", "benchmarks") for p in (ROOT / folder).rglob("*.py")]
    files += [ROOT / "README.md", ROOT / "benchmarks" / "README.md"]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if any(ord(c) < 32 and c != "\t" for c in line)
    ]
    assert not found, f"control characters in {found}"
