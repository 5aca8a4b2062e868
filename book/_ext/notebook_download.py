"""Offer every MyST notebook page as an executed ``.ipynb`` in the page's download menu.

sphinx-book-theme lists ``.ipynb`` in the download menu only when ``context["ipynb_source"]`` is set,
and sets it for a Markdown notebook only when a launch service (Binder, Colab, Thebe...) is
configured; this book configures none (it is read offline). This handler does the same copy without
a launch service: the notebook that MyST-NB executed (``_build/jupyter_execute/<page>.ipynb``) goes to
``_build/html/_sources/<page>.ipynb``, the place the theme's button points to.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def _offer_notebook(app, pagename, templatename, context, doctree):
    if not str(context.get("sourcename", "")).endswith((".md", ".md.txt")):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():  # a plain Markdown page, not a notebook
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    app.connect("html-page-context", _offer_notebook, priority=500)  # before the theme's buttons (501)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
