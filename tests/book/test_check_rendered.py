"""The book's browser check (book/check_rendered.py) flags each defect it is meant to catch, planted
one per page in a tiny HTML page, and passes a clean page that holds their legitimate look-alikes."""

import importlib.util
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CHROMIUM = next((n for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium): the browser check cannot run",
                allow_module_level=True)

_spec = importlib.util.spec_from_file_location(
    "check_rendered", Path(__file__).parents[2] / "book" / "check_rendered.py")
check_rendered = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_rendered)

# The article column is 700 px wide, as in the book at a 1280 px window.
SKELETON = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body {{ margin: 0; font: 16px sans-serif; }}
article.bd-article {{ width: 700px; padding: 0 20px; }}
mjx-container[display="true"] {{ display: block; }}
mjx-math {{ display: inline-block; }}
</style></head><body><article class="bd-article">{body}</article></body></html>"""


def _svg(view_width: int, font: str, text: str = "label") -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{view_width}pt" height="100pt" '
            f'viewBox="0 0 {view_width} 100"><text x="10" y="50" style="{font}; font-family: '
            f"'DejaVu Sans'\">{text}</text></svg>")


def _png() -> bytes:
    """A 1 x 1 white PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    header = (1).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\xff\xff"))
            + chunk(b"IEND", b""))


FILES = {
    "fine.svg": _svg(400, "font-size: 10px"),  # shown at 400 pt = 533 px: 13 px text
    "tiny.svg": _svg(400, "font: 6px 'DejaVu Sans'"),
    "big.svg": _svg(720, "font-size: 12px"),
    "paths.svg": ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100" width="400pt" height="100pt">'
                  '<defs><path id="DejaVuSans-61" d="M 0 0 L 10 10 z"/></defs><use href="#DejaVuSans-61"/></svg>'),
}
WIDE_TABLE = '<table><tr><th>method</th></tr><tr><td><div style="width: 1100px">wide</div></td></tr></table>'
DATAFRAME_TEXT = "   metric  value\n0       a    1.0\n1       b    2.0\n2       c    3.0"

PAGES = {
    "clean": """
        <h1>A clean page</h1>
        <p>A price of $5, an ellipsis ... in prose, and code: <code>k_\\sigma</code>, <code>x_{i}</code>.</p>
        <pre>W1^{d_k} = \\frac{1}{2} ...</pre>
        <img src="fine.svg">
        <table><tr><th>Metric</th><th><code>w1_exact</code></th></tr><tr><td>holds</td><td>✓</td></tr>
          <tr><td><code>ot_plan()</code>, <code>kernel_matrix()</code>, …</td><td>✗</td></tr></table>
        <div style="overflow-x: auto">""" + WIDE_TABLE + """</div>
        <mjx-container display="true"><mjx-math style="width: 600px">x</mjx-math></mjx-container>
        <div class="cell_output"><pre>done: 3 of 3 checks pass</pre></div>""",
    "raw_tex": "<p>the bound $ … FortheGaussiankernel k_\\sigma(z,z')</p>",
    "raw_tex_no_dollar": "<p>channel maps in R^{H·W}, half of it \\(x\\)</p>",
    "tiny_svg_text": '<img src="tiny.svg">',
    "svg_scaled_down": '<img src="big.svg" style="width: 300px">',  # 12 x 300/720 = 5 px
    "svg_text_as_paths": '<img src="paths.svg">',
    "png_figure": '<img src="fig.png">',
    "wide_table": WIDE_TABLE,
    "wide_display_math": '<mjx-container display="true"><mjx-math style="width: 900px">x</mjx-math></mjx-container>',
    "truncated_cell": ("<table><tr><th>Inequality</th></tr>"
                       "<tr><td>|E_S f - E_T f| &lt;= MMD (F1: kernel e...</td></tr></table>"),
    "boolean_cell": "<table><tr><th>Holds</th></tr><tr><td>True</td></tr></table>",
    "snake_case_header": "<table><tr><th>median_ratio</th></tr><tr><td>0.5</td></tr></table>",
    "truncated_output": '<div class="cell_output"><pre>array([0., 1., ..., 9.])</pre></div>',
    "dataframe_as_text": f'<div class="cell_output"><pre>{DATAFRAME_TEXT}</pre></div>',
    "series_as_text": '<div class="cell_output"><pre>a    1.0\nb    2.0\ndtype: float64</pre></div>',
    "traceback_output": ('<div class="cell_output"><div class="output traceback"><pre>Traceback (most recent call '
                         'last):\n  File "x.py", line 1\nValueError: boom ...</pre></div></div>'),
}

EXPECTED = {
    "raw_tex": "raw TeX in the text",
    "raw_tex_no_dollar": "raw TeX in the text",
    "tiny_svg_text": "figure text under 9 px: tiny.svg: 1 of 1 labels, the smallest 8.0 px",  # 6 x 533/400
    "svg_scaled_down": "figure text under 9 px: big.svg: 1 of 1 labels, the smallest 5.0 px",
    "svg_text_as_paths": "figure paths.svg: its text is drawn as paths",
    "png_figure": "raster figure",
    "wide_table": "content wider than the column: <table>",
    "wide_display_math": "display math wider than the column: 900 px wide",
    "truncated_cell": "truncated table cell",
    "boolean_cell": "table cell reads True/False",
    "snake_case_header": "snake_case table header outside <code>: 'median_ratio'",
    "truncated_output": "truncated cell output",
    "dataframe_as_text": "table printed as text in a cell output",
    "series_as_text": "table printed as text in a cell output",
    "traceback_output": "a cell failed, its output is a traceback: ValueError: boom",
}


def _check_all(folder: Path) -> dict[str, list[str]]:
    """Write every page and its assets into ``folder`` and check them (a few chromium runs at once)."""
    for name, text in FILES.items():
        (folder / name).write_text(text)
    (folder / "fig.png").write_bytes(_png())
    pages = {}
    for name, body in PAGES.items():
        pages[name] = folder / f"{name}.html"
        pages[name].write_text(SKELETON.format(body=body))
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(pages, pool.map(lambda page: check_rendered.check_page(CHROMIUM, page), pages.values()),
                        strict=True))


def test_planted_defects_are_reported_and_the_clean_page_passes(tmp_path):
    # One test, so that parallel workers (pytest -n) don't each run chromium on every page.
    problems = _check_all(tmp_path)
    assert not list(tmp_path.glob(".check-*")), "the injected copies were not deleted"
    wrong = {"clean": problems["clean"]} if problems["clean"] else {}
    for page, expected in EXPECTED.items():
        kind = expected.split(":")[0]
        found = problems[page]
        if not any(expected in p for p in found) or not all(p.startswith(kind) for p in found):
            wrong[page] = found  # the defect is missed, or something else is reported too
    assert not wrong, "\n".join(f"{page}: expected {EXPECTED.get(page, 'no problem')!r}, got {found}"
                                 for page, found in wrong.items())


def test_pages_filter(tmp_path):
    for rel in ("intro.html", "metrics/gaussian.html", "_static/x.html", "metrics/sinkhorn.html"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")

    def names(*wanted):
        return [str(p.relative_to(tmp_path)) for p in check_rendered.pages_of(tmp_path, list(wanted))]

    assert names() == ["intro.html", "metrics/gaussian.html", "metrics/sinkhorn.html"]
    assert names("gaussian", "intro.html") == ["intro.html", "metrics/gaussian.html"]
    assert names("metrics/sinkhorn") == ["metrics/sinkhorn.html"]
