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
