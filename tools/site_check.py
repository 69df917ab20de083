"""Check the course website in a real browser, and lesson 01 in JupyterLab (make site-check).

Headless Chromium (Debian's chromium and chromium-driver, driven by Selenium) opens the site
from a local HTTP server with every other host unreachable, visits every page it can reach from
the front page, and fails on a broken link (a page, file or #anchor of the site that is not
there), an image that does not load, maths that MathJax did not typeset (or raw $...$ left in
the text), a request to any other host, or a page whose badges do not open its own notebook.
It takes a screenshot of each lesson's first screen. Then it opens lesson 01 in JupyterLab
(tools/lab_check.py), runs it, moves the cost explorer's slider and checks that its table
changes. What it found goes to site/check/report.md, the pictures to site/check/*.png.

    python -m tools.site_check              # after python -m tools.site_build
"""
import argparse
import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

from . import lab_check, site_build, site_report

HTML = site_build.BUILD / "html"
CHECK = site_build.SITE / "check"
# Debian's packages chromium and chromium-driver; CHROMIUM and CHROMEDRIVER name others.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
                or "/usr/bin/chromedriver")
VIEWPORT = (1280, 800)  # a laptop's browser window: what "the first screen" of a page shows

# Everything a page tells about itself once MathJax has finished (run in the page).
PAGE_FACTS = r"""
const done = arguments[arguments.length - 1];
const images = () => Promise.all([...document.images].map(i => i.complete ? null :
    new Promise(r => { i.onload = i.onerror = r; })));
const typeset = () => (window.MathJax && MathJax.startup && MathJax.startup.promise) ?
    MathJax.startup.promise : Promise.resolve();
const waitMathJax = async () => {
  for (let t = 0; t < 300 && document.querySelector('.math') &&
       !(window.MathJax && MathJax.startup && MathJax.startup.promise); t++)
    await new Promise(r => setTimeout(r, 100));
};
waitMathJax().then(typeset).then(images).then(() => {
  const root = document.querySelector('article') || document.body;
  const raw = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement.closest('pre, code, script, style, mjx-container')) continue;
    const m = node.textContent.match(/\$[^$\s][^$]*\$|\$\$|\\\(|\\\[/);
    if (m) raw.push(node.textContent.trim().slice(0, 80));
  }
  const maths = [...root.querySelectorAll('.math')];
  done({
    title: document.title,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    badges: [...document.querySelectorAll('.course-launch a')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector('mjx-container')).length,
    matherrors: root.querySelectorAll('mjx-merror').length,
    raw: raw,
    resources: performance.getEntriesByType('resource').map(e => e.name),
  });
});
"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site and records every request it could not answer (404s)."""
    failed = None  # set per server: a list of paths

    def log_message(self, *args):
        pass

    def send_error(self, code, *args, **kwargs):
        self.failed.append(f"{code} {self.path}")
        super().send_error(code, *args, **kwargs)


@contextlib.contextmanager
def serve(folder):
    """(base URL, list of failed requests) of an HTTP server on 127.0.0.1 serving folder."""
    failed = []
    handler = type("Handler", (QuietHandler,), {"failed": failed})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", failed
    finally:
        server.shutdown()
        server.server_close()


def chrome(viewport=VIEWPORT):
    """Headless Chromium that can reach 127.0.0.1 only: a page that needs the network fails.

    Its window is sized so that the page itself (the viewport) is `viewport` pixels.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--hide-scrollbars", f"--window-size={viewport[0]},{viewport[1]}",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, for errors
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    chrome_height = driver.execute_script("return window.outerHeight - window.innerHeight")
    driver.set_window_size(viewport[0], viewport[1] + chrome_height)
    driver.set_script_timeout(120)
    driver.set_page_load_timeout(120)
    return driver


def visit(driver, url):
    """Open url and return PAGE_FACTS once its maths and images are done, with the errors
    that the browser's console shows (a file that did not load, a script that failed)."""
    driver.get(url)
    facts = driver.execute_async_script(PAGE_FACTS)
    facts["console"] = [entry["message"] for entry in driver.get_log("browser")
                        if entry["level"] == "SEVERE"]
    return facts


def crawl(driver, base, screenshots, settings):
    """Visit every page reachable from index.html; returns ({page: facts}, [problems])."""
    pages, problems, queue, files = {}, [], ["index.html"], set()
    while queue:
        page = queue.pop(0)
        if page in pages:
            continue
        facts = pages[page] = visit(driver, base + page)
        problems += page_problems(page, facts, base, settings)
        if page.startswith("notebooks/"):
            save_screenshot(driver, screenshots / (Path(page).stem + ".png"))
        for link in facts["links"]:
            path = site_path(link, base)
            if path is None:
                continue
            if path.endswith(".html"):
                queue.append(path)
            else:
                files.add(path)
    problems += missing_anchors(pages, base) + missing_files(files, base)
    return pages, problems


def site_path(link, base):
    """The site's file that a link points to ('notebooks/01_x.html'), or None for another host."""
    if not link.startswith(base):
        return None
    path = urlsplit(link).path[len(urlsplit(base).path):]
    return path + "index.html" if path == "" or path.endswith("/") else path


def page_problems(page, facts, base, settings):
    """What is wrong on one page: images, maths, outside requests, its badges."""
    problems = [f"{page}: image did not load: {i['src']}" for i in facts["images"] if not i["ok"]]
    if facts["untypeset"] or facts["matherrors"]:
        problems.append(f"{page}: {facts['untypeset']} of {facts['maths']} maths not typeset, "
                        f"{facts['matherrors']} MathJax errors")
    problems += [f"{page}: raw maths in the text: {text!r}" for text in facts["raw"]]
    problems += [f"{page}: requested from outside the site: {url}"
                 for url in facts["resources"] if not url.startswith(base)]
    problems += [f"{page}: browser console: {message}" for message in facts["console"]]
    if page.startswith(("notebooks/", "exercises/")):
        notebook = Path(page).with_suffix(".ipynb").as_posix()
        links = site_build.launch_links(notebook, settings)
        expected = [links["lab"], links["colab"], links["binder"], base + notebook]
        if facts["badges"] != expected:
            problems.append(f"{page}: badges {facts['badges']} are not {expected}")
    return problems


def missing_anchors(pages, base):
    """Links to #anchors of visited pages that have no element with that id."""
    problems = []
    for page, facts in pages.items():
        for link in facts["links"]:
            path, fragment = site_path(link, base), urldefrag(link).fragment
            if fragment and path in pages and fragment not in pages[path]["ids"]:
                problems.append(f"{page}: link to a missing anchor: {path}#{fragment}")
    return sorted(set(problems))


def missing_files(files, base):
    """Linked files of the site (notebooks, sources) that the server does not deliver."""
    problems = []
    for path in sorted(files):
        try:
            with urllib.request.urlopen(base + path) as response:
                response.read()
        except OSError as error:
            problems.append(f"broken link to {path}: {error}")
    return problems


def save_screenshot(driver, path):
    """The browser window as a PNG, reduced to 256 colours to keep it small in the repository."""
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256)
    small.save(path, optimize=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.site_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML, help="the built site (site/_build/html)")
    parser.add_argument("--out", type=Path, default=CHECK, help="report and screenshots")
    parser.add_argument("--skip-lab", action="store_true", help="check the site only")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        sys.exit(f"no site in {args.html}: build it first (make site)")
    for program in (CHROMIUM, CHROMEDRIVER):
        if not Path(program).exists():
            sys.exit(f"{program} is missing: apt-get install chromium chromium-driver "
                     "(or name them with CHROMIUM= and CHROMEDRIVER=)")
    settings = site_build.load_settings()
    start = time.perf_counter()
    driver = chrome()
    try:
        with serve(args.html) as (base, failed):
            pages, problems = crawl(driver, base, args.out / "screenshots", settings)
            problems += [f"the server answered {line}" for line in sorted(set(failed))]
        site_seconds = time.perf_counter() - start
        lab = None if args.skip_lab else lab_check.check_explorer(driver, args.out)
    finally:
        driver.quit()
    site_report.write(args.out / "report.md", pages, problems, lab, site_seconds,
                      driver.capabilities.get("browserVersion", "?"), settings)
    print((args.out / "report.md").read_text())
    if problems or (lab and not lab["passed"]):
        sys.exit("site check failed: see site/check/report.md")


if __name__ == "__main__":
    main()
