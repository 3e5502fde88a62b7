"""Build the notebooks before pytest collects them (nbmake runs the .ipynb files).

The percent-format .py files are the source; their .ipynb versions and the student versions
(`student/`, solutions replaced by NotImplementedError) are built here and ignored by git.
"""

from pathlib import Path

from minigen.exercises.build import build, notebook_sources, write_notebook

HERE = Path(__file__).parent


def pytest_sessionstart(session):
    for source in notebook_sources(HERE):
        write_notebook(source.read_text(), source.with_suffix(".ipynb"))
    build(HERE, HERE / "student")
