"""Open every page of the built book in headless Chromium, as a reader would, and fail on what a
reader would see broken: console errors, TeX that MathJax did not render (or rendered as an error),
and images that do not load. Saves a screenshot of each page under ``book/_build/screenshots``.
Also checks, statically, every internal link of every built page (search and index pages included):
a relative ``href`` must name an existing file and its ``#fragment`` an ``id`` in that file.

Run after ``jupyter-book build book``: ``python book/check_rendered.py``. Needs ``chromium``
(Debian package); ``.ci/run`` installs it.
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

BUILD = Path(__file__).parent / "_build"
HTML = BUILD / "html"
SHOTS = BUILD / "screenshots"
SKIP = {"genindex.html", "search.html", "py-modindex.html"}
CONSOLE_ERROR = re.compile(r"CONSOLE.*?(Uncaught|Error|Failed to load resource|404)", re.I)
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$")
HREF = re.compile(r'\bhref="([^"]*)"')
ID = re.compile(r'\bid="([^"]*)"')


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    sys.exit("check_rendered: no chromium on PATH (apt-get install chromium)")


def _run(browser: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style|mjx-assistive-mml)\b.*?</\1>", "", dom, flags=re.S | re.I)
    dom = re.sub(r"<(pre|code)\b.*?</\1>", "", dom, flags=re.S | re.I)  # code may show TeX on purpose
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


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


def check_page(browser: str, page: Path) -> list[str]:
    url = page.resolve().as_uri()
    problems = []
    dumped = _run(browser, "--dump-dom", url)
    dom = dumped.stdout
    problems += [f"console: {line.strip()[:300]}" for line in dumped.stderr.splitlines() if CONSOLE_ERROR.search(line)]
    if "<mjx-merror" in dom:
        problems.append("MathJax reported a TeX error (mjx-merror)")
    if 'class="math' in page.read_text() and "<mjx-container" not in dom:
        problems.append("page has math but MathJax rendered none (is MathJax served locally?)")
    raw = RAW_TEX.findall(_visible_text(dom))
    if raw:
        problems.append(f"unrendered TeX delimiters in the page text: {raw[:5]}")
    for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
        parsed = urlparse(src)
        if parsed.scheme in ("http", "https"):
            problems.append(f"image from the network (the book must work offline): {src}")
        elif parsed.scheme != "data":
            target = Path(unquote(parsed.path)) if parsed.scheme == "file" else (page.parent / unquote(parsed.path))
            if not target.is_file():
                problems.append(f"missing image: {src}")
    shot = SHOTS / (str(page.relative_to(HTML)).replace("/", "__").removesuffix(".html") + ".png")
    _run(browser, f"--screenshot={shot}", "--window-size=1280,1800", url)
    if not shot.is_file():
        problems.append("no screenshot was produced")
    return problems


def main() -> int:
    if not HTML.is_dir():
        sys.exit(f"check_rendered: {HTML} does not exist; build the book first")
    browser = chromium()
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = sorted(p for p in HTML.rglob("*.html") if not any(part.startswith("_") for part in p.relative_to(HTML).parts))
    failed = 0
    for page in pages:
        in_browser = page.name not in SKIP and "http-equiv=\"Refresh\"" not in page.read_text()[:500]
        problems = (check_page(browser, page) if in_browser else []) + check_links(page)
        status = "ok" if not problems else "FAIL"
        print(f"{status:4s} {page.relative_to(HTML)}")
        for problem in problems:
            print(f"     - {problem}")
        failed += bool(problems)
    print(f"{len(pages) - failed} passed, {failed} failed (browser and link check of the built book; screenshots in {SHOTS})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
