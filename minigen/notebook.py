"""What minigen sets up when it runs inside Jupyter: figures that show as pictures.

Figures made without pyplot (as all of minigen's are, and the notebooks' own) have no display
rule of their own: in a kernel that has not run `%matplotlib inline`, Jupyter shows only
their text, `<Figure size 600x400 with 1 Axes>`. `import minigen` calls
`show_figures_in_notebooks`, which gives the running kernel that rule.
"""

from __future__ import annotations

import sys


def _figure_png(fig) -> bytes | None:
    from .plots import png_bytes  # matplotlib is imported when the first figure is shown, not before

    return png_bytes(fig)


def show_figures_in_notebooks() -> bool:
    """In an IPython kernel, display every matplotlib `Figure` as a PNG image; True if it did.

    The rule is added to the kernel's PNG formatter by the class's name (matplotlib.figure.Figure),
    so nothing is imported for it. Outside IPython it does nothing and returns False.
    """
    IPython = sys.modules.get("IPython")  # a running IPython has it loaded already; nothing else needs it
    shell = IPython.get_ipython() if IPython is not None and hasattr(IPython, "get_ipython") else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    shell.display_formatter.formatters["image/png"].for_type_by_name("matplotlib.figure", "Figure", _figure_png)
    return True
