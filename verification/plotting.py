"""How every figure of the book is drawn and shown.

:data:`STYLE` is the one matplotlib style of the book's figures: fonts of at least 10 pt, and a
cycle of 28 distinct (colour, line style) pairs: seven colours (Okabe and Ito's, told apart with
colour-vision deficiency; their yellow is too faint for a thin line) against four line styles, so
that neighbouring curves differ in both and a curve stays identifiable in grey.
:func:`show` displays a figure in a notebook as SVG whose text stays text
(``svg.fonttype = "none"``): the book's browser check (``book/check_rendered.py``) reads every
label's size from the SVG and measures it at the width the page renders the image.

A figure is at most :data:`WIDTH` inches wide: at 100 dpi it then fits the book's content column
unscaled, and a 10 pt label reads at about 10 px.
"""

from __future__ import annotations

import io

from cycler import cycler

#: Okabe-Ito colours without the yellow (black last: it is also the colour of reference lines).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"]
LINESTYLES = ["-", "--", "-.", ":"]
#: Curve i gets colour i mod 7 and line style i mod 4: 28 different pairs before one repeats.
CYCLE = cycler(color=[COLORS[i % len(COLORS)] for i in range(28)],
               linestyle=[LINESTYLES[i % len(LINESTYLES)] for i in range(28)])

#: Inches: the widest figure that the book's content column shows unscaled at 100 dpi.
WIDTH = 7.2

STYLE = {
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 12,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.fonttype": "none",
    "axes.prop_cycle": CYCLE,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def use_style() -> None:
    """Make :data:`STYLE` the default of every figure drawn after the call (call once per page)."""
    import matplotlib

    matplotlib.rcParams.update(STYLE)


def svg(fig) -> str:
    """The figure as SVG text with its labels as ``<text>`` elements; closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def show(fig) -> None:
    """Display ``fig`` in a notebook as SVG (see :func:`svg`)."""
    from IPython.display import SVG, display

    display(SVG(svg(fig)))
