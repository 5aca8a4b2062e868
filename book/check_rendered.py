"""Open every page of the built book in headless Chromium, as a reader would, and fail on what a
reader would see broken. For each page, Chromium loads a temporary copy of it (written next to it,
so that relative assets load, and deleted afterwards) with an injected script. The script waits for
the page, MathJax (``MathJax.startup.promise``) and the fonts, measures the layout at a 1280 x 1800
window (the book's rendered width), and writes a JSON report into the page; ``--dump-dom`` returns
it, and the rules below are applied to it in Python. A page fails on:

* console errors; TeX that MathJax rendered as an error, or math that MathJax did not render;
* raw TeX in the visible text (outside ``pre``/``code``, API signatures and MathJax's output): the delimiters
  ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``$$``, a backslash command (``\\sigma``), ``_{`` or ``^{``, and a
  lone ``$`` that touches a letter, a brace or a backslash or stands near other TeX;
* images that do not load or come from the network;
* figure text smaller than 9 px: every image in the article must be an SVG whose labels are
  ``<text>`` (what ``verification.plotting.show`` displays); each label's size is its font size in
  the SVG's units times the image's rendered width over the SVG's ``viewBox`` width. A label is
  measured by its largest font size (a sub- or superscript is smaller than its label, on purpose).
  A raster image, or an SVG whose text was drawn as paths, cannot be measured and fails;
* content wider than the article column: a block (table, image, code...) whose right edge passes
  the column, unless it sits in a horizontally scrolling container; display math must fit the
  column in any case (a reader should not scroll an equation);
* tables as pandas prints them: a cell that is or ends with ``...``/``…`` (truncation; not an
  enumeration's ``a, b, …``), a cell that reads ``True``/``False`` (the book writes ✓/✗), a header
  that is a snake_case identifier outside ``<code>``; in cell outputs, a ``...`` token or a
  DataFrame/Series printed as text;
* a cell output that is a traceback (the build's ``--keep-going`` renders a failed cell).

Also checks, statically, every internal link of every built page (search and index pages included):
a relative ``href`` must name an existing file and its ``#fragment`` an ``id`` in that file.

Run after ``jupyter-book build book``: ``python book/check_rendered.py [--html DIR] [--page NAME ...]
[--screenshots DIR]``. Needs ``chromium`` (Debian package); ``.ci/run`` installs it.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlparse

HTML = Path(__file__).parent / "_build" / "html"
SKIP = {"genindex.html", "search.html", "py-modindex.html"}
WINDOW = "--window-size=1280,1800"
MIN_FONT_PX = 9.0
MAX_LISTED = 8  # problems of one kind listed per page; the rest are counted
CONSOLE_ERROR = re.compile(r"CONSOLE.*?(Uncaught|Error|Failed to load resource|404)", re.I)
HREF = re.compile(r'\bhref="([^"]*)"')
ID = re.compile(r'\bid="([^"]*)"')
REPORT = re.compile(r'<div id="check-rendered-report"[^>]*>(.*?)</div>', re.S)

# Raw TeX in visible text: delimiters MathJax did not take, commands, braced sub/superscripts.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]+|[_^]\{")
# A lone $ is TeX when it touches a letter, brace or backslash, or stands within 40 characters of TeX.
TEX_TOUCH = re.compile(r"[A-Za-z{}\\]")
TEX_NEAR = re.compile(r"\\[A-Za-z]|[_^][{\\A-Za-z0-9]")
ELLIPSIS = re.compile(r"(?<!, )(\.\.\.|…)$")  # pandas cut the cell; an enumeration's ", …" is fine
ELLIPSIS_TOKEN = re.compile(r"(?<![^\s\[(,])(\.\.\.|…)(?![^\s\])],])")
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")
PANDAS_FOOTER = re.compile(r"^\[\d+ rows x \d+ columns\]$|^(Name: .*, )?dtype: \w+$", re.M)
SVG = "{http://www.w3.org/2000/svg}"
SVG_FONT = re.compile(r"font(?:-size)?\s*:\s*(?:[^;]*?\s)?([\d.]+)(px|pt)(?=[\s;/]|$)")  # CSS sizes carry a unit
RASTER = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp")

MEASURE = r"""
(() => {
  const SKIP_TEXT = 'script,style,pre,code,kbd,samp,textarea,noscript,template,svg,mjx-container,.sig';
  const styleOf = el => getComputedStyle(el);
  const shown = el => el.getClientRects().length > 0;
  const scrollsX = el => ['auto', 'scroll'].includes(styleOf(el).overflowX);
  const short = s => s.replace(/\s+/g, ' ').trim().slice(0, 70);

  const tex = m => window.MathJax?.startup?.document?.getMathItemsWithin(m)[0]?.math ?? m.textContent;

  // Text of a node with its math as $TeX$.
  function readable(node) {
    if (node.nodeType === Node.TEXT_NODE) return node.data;
    if (node.tagName === 'MJX-CONTAINER') return `$${tex(node)}$`;
    return [...node.childNodes].map(readable).join('');
  }

  function describe(el) {
    const cls = [...el.classList].slice(0, 3).map(c => '.' + c).join('');
    const what = el.tagName === 'IMG' ? el.getAttribute('src') : short(readable(el));
    return `<${el.tagName.toLowerCase()}${cls}> "${what}"`;
  }

  function column() {
    const el = document.querySelector('article.bd-article') || document.body;
    const r = el.getBoundingClientRect(), s = styleOf(el);
    const left = r.left + parseFloat(s.paddingLeft), right = r.right - parseFloat(s.paddingRight);
    return {el, right, width: right - left};
  }

  // The block whose line holds el: climb out of inline elements and out of blocks inside inline ones.
  function blockOf(el) {
    const inline = e => styleOf(e).display.startsWith('inline');
    while (el.parentElement && (inline(el) || inline(el.parentElement))) el = el.parentElement;
    return el;
  }

  // Visible text outside code and MathJax output, one string per block element.
  function texts() {
    const blocks = new Map();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest(SKIP_TEXT) || !shown(parent)) continue;
      const block = blockOf(parent);
      blocks.set(block, (blocks.get(block) || '') + node.data);
    }
    return [...blocks.values()].map(t => t.replace(/\s+/g, ' ').trim()).filter(Boolean);
  }

  function images() {
    return [...document.images].map(img => ({
      src: img.currentSrc || img.src, figure: !!img.closest('article'),
      width: img.getBoundingClientRect().width, loaded: img.complete && img.naturalWidth > 0}));
  }

  function insideScroller(el, col) {
    for (let a = el.parentElement; a && a !== col.el; a = a.parentElement) if (scrollsX(a)) return true;
    return false;
  }

  // The outermost blocks with content past the column's right edge, outside scrolling containers.
  function tooWide(col) {
    const reach = new Map();  // block -> right edge of its content
    for (const el of col.el.querySelectorAll('*')) {
      const right = el.getBoundingClientRect().right;
      if (right <= col.right + 1 || el.parentElement.closest('mjx-container') || !shown(el)
          || insideScroller(el, col)) continue;
      const block = blockOf(el);
      reach.set(block, Math.max(reach.get(block) || 0, right));
    }
    const blocks = [...reach.keys()];
    return blocks.filter(b => !blocks.some(a => a !== b && a.contains(b))).map(b => ({
      what: describe(b),
      over: Math.round(Math.max(...blocks.filter(x => b.contains(x)).map(x => reach.get(x))) - col.right)}));
  }

  function displayMath(col) {
    return [...col.el.querySelectorAll('mjx-container[display="true"]')].map(m => {
      const math = m.querySelector('mjx-math') || m;
      return {tex: short(tex(m)), width: Math.round(math.getBoundingClientRect().width)};
    });
  }

  // Text of an element without its code and math.
  function plain(el) {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('code,mjx-container').forEach(c => c.remove());
    return copy.textContent.replace(/\s+/g, ' ').trim();
  }

  function tables(col) {
    return [...col.el.querySelectorAll('table')].map(t => ({
      section: short(t.closest('section')?.querySelector('h1,h2,h3,h4,h5,h6')?.textContent || '').replace(/#$/, ''),
      cells: [...t.querySelectorAll('th,td')].map(c => ({head: c.tagName === 'TH', text: plain(c)}))}));
  }

  function outputs(col) {
    return [...col.el.querySelectorAll('.cell_output pre')].map(p => ({
      text: p.textContent, traceback: !!p.closest('.traceback')}));
  }

  function measure() {
    const col = column();
    return {column: Math.round(col.width), texts: texts(), images: images(), wide: tooWide(col),
            math: displayMath(col), tables: tables(col), outputs: outputs(col)};
  }

  window.addEventListener('load', async () => {
    let report;
    try {
      await window.MathJax?.startup?.promise;
      await document.fonts.ready;
      await new Promise(done => setTimeout(done, 50));
      report = measure();
    } catch (e) {
      report = {error: String(e && e.stack || e)};
    }
    const out = document.createElement('div');
    out.id = 'check-rendered-report';
    out.hidden = true;
    out.textContent = JSON.stringify(report);
    document.body.appendChild(out);
  });
})();
"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("check_rendered: no chromium on PATH (apt-get install chromium)")


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", WINDOW, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _listed(kind: str, items: list[str]) -> list[str]:
    """``kind: item`` for the first MAX_LISTED items, then how many more."""
    out = [f"{kind}: {item}" for item in items[:MAX_LISTED]]
    if len(items) > MAX_LISTED:
        out.append(f"{kind}: ... and {len(items) - MAX_LISTED} more")
    return out


def _context(text: str, start: int, end: int) -> str:
    return f'"{text[max(0, start - 30):end + 30]}"'


# --- rules on the browser's report -------------------------------------------------------------

def _tex_dollar(text: str, i: int) -> bool:
    """Is the ``$`` at ``text[i]`` TeX: touching a letter, brace or backslash, or within 40 characters of TeX?"""
    touching = (i > 0 and TEX_TOUCH.match(text[i - 1])) or (i + 1 < len(text) and TEX_TOUCH.match(text[i + 1]))
    return bool(touching or TEX_NEAR.search(text, max(0, i - 40), i + 41))


def raw_tex(texts: list[str]) -> list[str]:
    """Raw TeX in visible text: one entry per text block, quoting its first fragment in context."""
    found = []
    for text in texts:
        hits = {m.span() for m in RAW_TEX.finditer(text)}
        covered = {i for start, end in hits for i in range(start, end)}
        hits |= {(i, i + 1) for i, char in enumerate(text) if char == "$" and i not in covered and _tex_dollar(text, i)}
        if hits:
            more = f" (+{len(hits) - 1} more in this block)" if len(hits) > 1 else ""
            found.append(_context(text, *min(hits)) + more)
    return _listed("raw TeX in the text", found)


def _font_sizes(el: ET.Element) -> list[float]:
    """Font sizes (SVG units) that an SVG element sets, in its style or its font-size attribute."""
    found = [(m[1], m[2]) for m in SVG_FONT.finditer(el.get("style", ""))]
    if attr := re.fullmatch(r"\s*([\d.]+)(px|pt)?\s*", el.get("font-size", "")):
        found.append((attr[1], attr[2]))
    return [float(size) * (4 / 3 if unit == "pt" else 1) for size, unit in found]


def _glyph_sizes(el: ET.Element, inherited: float) -> list[float]:
    """The font size of every run of characters under ``el`` (sizes inherit down the tree)."""
    size = (_font_sizes(el) or [inherited])[-1]
    sizes = [size] if (el.text or "").strip() else []
    for child in el:
        sizes += _glyph_sizes(child, size) + ([size] if (child.tail or "").strip() else [])
    return sizes


def _svg_labels(svg: Path) -> tuple[float, list[tuple[float, str]]] | str:
    """The SVG's viewBox width and (largest font size in SVG units, text) of each <text>, or why it
    can't be measured."""
    try:
        root = ET.parse(svg).getroot()
    except ET.ParseError as err:
        return f"unreadable SVG ({err})"
    box = root.get("viewBox", "").replace(",", " ").split()
    if len(box) != 4:
        return "no viewBox: its text can't be scaled to the page"
    labels = []
    for text in root.iter(f"{SVG}text"):
        sizes = _glyph_sizes(text, 16.0)  # 16: the CSS default, where nothing sets a size
        if sizes:
            labels.append((max(sizes), "".join(part.strip() for part in text.itertext())))
    if not labels and root.find(f".//{SVG}defs/{SVG}path") is not None:
        return "its text is drawn as paths (no <text>); save it with svg.fonttype = 'none' (verification.plotting.show)"
    return float(box[2]), labels


def _local_file(src: str, page: Path) -> Path | None:
    url = urlparse(src)
    if url.scheme == "file":
        return Path(unquote(url.path))
    return None if url.scheme else (page.parent / unquote(url.path))


def images(report_images: list[dict], page: Path) -> list[str]:
    """Missing and network images anywhere; unmeasurable or small-text figures in the article."""
    problems, raster, small = [], [], []
    for img in report_images:
        src, file = img["src"], _local_file(img["src"], page)
        name = Path(urlparse(src).path).name or src[:60]
        if urlparse(src).scheme in ("http", "https"):
            problems.append(f"image from the network (the book must work offline): {src}")
        elif (file is not None and not file.is_file()) or not img["loaded"]:
            problems.append(f"missing image: {src}")
        elif not img["figure"] or img["width"] == 0:
            continue
        elif name.lower().endswith(RASTER) or (src.startswith("data:image/") and not src.startswith("data:image/svg")):
            raster.append(name)
        elif file is not None and file.suffix.lower() == ".svg":
            measured = _svg_labels(file)
            if isinstance(measured, str):
                problems.append(f"figure {name}: {measured}")
                continue
            width, labels = measured
            scale = img["width"] / width
            under = sorted((size * scale, label) for size, label in labels if size * scale < MIN_FONT_PX)
            if under:
                small.append(f"{name}: {len(under)} of {len(labels)} labels, the smallest {under[0][0]:.1f} px "
                             f"{under[0][1]!r} (the SVG is {width:.0f} units wide, shown at {img['width']:.0f} px)")
    unmeasurable = "raster figure, its text can't be measured (show it with verification.plotting.show)"
    return problems + _listed(unmeasurable, raster) + _listed(f"figure text under {MIN_FONT_PX:g} px", small)


def too_wide(report: dict) -> list[str]:
    column = report["column"]
    wide = [f"{w['what']} reaches {w['over']} px past the {column} px column "
            "(narrow it or put it in a horizontally scrolling container)" for w in report["wide"]]
    math = [f"{m['width']} px wide in a {column} px column: \"{m['tex']}\""
            for m in report["math"] if m["width"] > column]
    return _listed("content wider than the column", wide) + _listed("display math wider than the column", math)


def tables(report_tables: list[dict]) -> list[str]:
    """pandas habits in tables: truncated cells, True/False cells, snake_case headers."""
    truncated, booleans, snake = [], [], []
    for table in report_tables:
        where = f"(table under \"{table['section'][:50]}\")" if table["section"] else "(table)"
        for cell in table["cells"]:
            text = cell["text"]
            if ELLIPSIS.search(text):
                truncated.append(f"{text[-50:]!r} {where}")
            if text in ("True", "False"):
                booleans.append(f"{text} {where}")
            if cell["head"] and SNAKE.fullmatch(text):
                snake.append(f"{text!r} {where}")
    return (_listed("truncated table cell (pandas '...')", truncated)
            + _listed("table cell reads True/False (write ✓/✗)", booleans)
            + _listed("snake_case table header outside <code>", snake))


def _dataframe_text(text: str) -> bool:
    """A DataFrame or Series printed as text: pandas' footer, or a right-aligned grid under an indented header."""
    if PANDAS_FOOTER.search(text):
        return True
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or not lines[0][:1].isspace():
        return False
    width = len(lines[0].rstrip())  # pandas right-aligns every column, the last one included
    return all(not line[:1].isspace() and len(line.split()) >= 2 and len(line.rstrip()) == width for line in lines[1:])


def outputs(report_outputs: list[dict]) -> list[str]:
    """Cell outputs: tracebacks, truncation, tables printed as text."""
    failed = [out["text"].strip().splitlines()[-1][:200]
              for out in report_outputs if out["traceback"] and out["text"].strip()]
    texts = [out["text"] for out in report_outputs if not out["traceback"]]
    truncated = [_context(text, *m.span()) for text in texts for m in ELLIPSIS_TOKEN.finditer(text)]
    frames = [repr(text.strip()[:60]) for text in texts if _dataframe_text(text)]
    return (_listed("a cell failed, its output is a traceback", failed)
            + _listed("truncated cell output ('...')", truncated)
            + _listed("table printed as text in a cell output (render it as Markdown or HTML)", frames))


# --- one page ------------------------------------------------------------------------------------

def _dump(browser: str, page: Path) -> subprocess.CompletedProcess:
    """--dump-dom of a copy of ``page`` (same folder) with the measuring script injected."""
    source = page.read_text(errors="replace")
    cut = source.rfind("</body>")
    cut = cut if cut >= 0 else len(source)
    injected = source[:cut] + f"<script>{MEASURE}</script>\n" + source[cut:]
    with tempfile.NamedTemporaryFile("w", dir=page.parent, prefix=".check-", suffix=".html", delete=False) as copy:
        copy.write(injected)
    try:
        return _run(browser, "--dump-dom", Path(copy.name).resolve().as_uri())
    finally:
        Path(copy.name).unlink()


def check_page(browser: str, page: Path) -> list[str]:
    """What a reader would see broken on ``page`` (an HTML file), one line per problem."""
    dumped = _dump(browser, page)
    dom = dumped.stdout
    problems = [f"console: {line.strip()[:300]}" for line in dumped.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    if "<mjx-merror" in dom:
        problems.append("MathJax reported a TeX error (mjx-merror)")
    if 'class="math' in page.read_text(errors="replace") and "<mjx-container" not in dom:
        problems.append("page has math but MathJax rendered none (is MathJax served locally?)")
    found = REPORT.search(dom)
    if not found:
        return problems + ["the measuring script left no report (the page did not finish loading?)"]
    report = json.loads(html.unescape(found[1]))
    if "error" in report:
        return problems + [f"the measuring script failed: {report['error'][:300]}"]
    return (problems + raw_tex(report["texts"]) + images(report["images"], page) + too_wide(report)
            + tables(report["tables"]) + outputs(report["outputs"]))


@functools.cache
def _ids(page: Path) -> set[str]:
    return {html.unescape(i) for i in ID.findall(page.read_text(errors="replace"))}


def check_links(page: Path) -> list[str]:
    """Internal links of the built HTML (not the browser's DOM): file exists, fragment is an id there."""
    problems = []
    for href in sorted(set(HREF.findall(page.read_text(errors="replace")))):
        link = urlparse(html.unescape(href))
        if link.scheme or link.netloc or href in ("", "#"):
            continue  # http(s), mailto, javascript: ... are not ours to check offline
        target = (page.parent / unquote(link.path)).resolve() if link.path else page
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link: {href} (no such file)")
        elif link.fragment and target.suffix == ".html" and unquote(link.fragment) not in _ids(target):
            problems.append(f"broken link: {href} (no id=\"{unquote(link.fragment)}\" in {target.name})")
    return problems


# --- the book --------------------------------------------------------------------------------------

def pages_of(root: Path, names: list[str]) -> list[Path]:
    """Built pages under ``root`` (not _static, _sources...), only those named in ``names`` if any
    (a name matches the path relative to ``root``, with or without ``.html``, or the file's stem)."""
    pages = sorted(p for p in root.rglob("*.html")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts))
    wanted = {n.removesuffix(".html") for n in names}
    return [p for p in pages if not wanted or {str(p.relative_to(root).with_suffix("")), p.stem} & wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=HTML, help="the built book's html folder (default: %(default)s)")
    parser.add_argument("--page", action="append", default=[], metavar="NAME",
                        help="check only this page (e.g. verification, metrics/gaussian); repeatable")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="also save a screenshot of each page here")
    args = parser.parse_args(argv)
    if not args.html.is_dir():
        sys.exit(f"check_rendered: {args.html} does not exist; build the book first")
    pages = pages_of(args.html, args.page)
    if not pages:
        sys.exit(f"check_rendered: no page of {args.html} matches {args.page}")
    browser = chromium()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    failed, started = 0, time.monotonic()
    for page in pages:
        in_browser = page.name not in SKIP and 'http-equiv="Refresh"' not in page.read_text()[:500]
        problems = (check_page(browser, page) if in_browser else []) + check_links(page)
        if args.screenshots and in_browser:
            shot = args.screenshots / str(page.relative_to(args.html).with_suffix(".png")).replace("/", "__")
            _run(browser, f"--screenshot={shot}", page.resolve().as_uri())
        print(f"{'ok' if not problems else 'FAIL':4s} {page.relative_to(args.html)}", flush=True)
        for problem in problems:
            print(f"     - {problem}")
        failed += bool(problems)
    print(f"{len(pages) - failed} passed, {failed} failed (browser and link check of {args.html}, "
          f"{time.monotonic() - started:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
