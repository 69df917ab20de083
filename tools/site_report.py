"""site/check/report.md: what the browser check of the website found (tools/site_check.py)."""
import json
import os
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

from . import site_build


def write(path, pages, problems, lab, site_seconds, browser, settings):
    """The report, with pictures referenced relative to its folder."""
    path = Path(path)
    lines = header(pages, problems, lab, browser)
    lines += page_table(pages)
    lines += ["", "## Problems", ""] + ([f"- {p}" for p in problems] or ["none"])
    notes = Counter(site_build.build_notes(settings))
    lines += ["", "## Notes from the build (not failures of this check)", ""]
    note_lines = [f"- {n}" + (f" (× {k})" if k > 1 else "") for n, k in notes.items()]
    if "OWNER" in settings["repository_url"]:
        note_lines.append(f"- the badges point at the placeholder repository "
                          f"{settings['repository_url']} (site/settings.toml)")
    lines += note_lines or ["none"]
    lines += screenshots(path.parent, pages)
    lines += lab_section(lab)
    built = site_build.BUILD / "build.json"
    build_seconds = json.loads(built.read_text())["seconds"] if built.exists() else None
    lines += ["", f"## Time (on {os.cpu_count()} cores)", ""]
    if build_seconds is not None:
        lines.append(f"- building the site (make site): {build_seconds:.0f} s")
    lines.append(f"- visiting the {len(pages)} pages: {site_seconds:.0f} s")
    if lab:
        lines.append(f"- JupyterLab check of lesson 01: {lab['seconds']:.0f} s")
    path.write_text("\n".join(lines) + "\n")


def header(pages, problems, lab, browser):
    passed = not problems and (lab is None or lab["passed"])
    versions = ", ".join(f"{name} {version(name)}" for name in
                         ("sphinx", "myst-nb", "sphinx-book-theme", "selenium"))
    count = lambda key: sum(len(f[key]) if isinstance(f[key], list) else f[key]  # noqa: E731
                            for f in pages.values())
    targets = {link.split("#")[0] for f in pages.values() for link in f["links"]}
    inside = {t for t in targets if t.startswith("http://127.0.0.1:")}
    lab_word = "skipped" if lab is None else "passed" if lab["passed"] else "FAILED"
    return [
        "# Browser check of the course website",
        "",
        (f"`make site-check` (tools/site_check.py), {time.strftime('%Y-%m-%d %H:%M %Z')}: "
         f"headless Chromium {browser} with every host but 127.0.0.1 unreachable, on the site "
         f"that `make site` built ({versions})."),
        "",
        (f"**{'Passed' if passed else 'FAILED'}**: {len(pages)} pages visited; {count('links')} "
         f"links on them, to {len(inside)} distinct pages and files of the site and "
         f"{len(targets - inside)} outside it; {count('images')} images loaded; "
         f"{count('maths')} maths typeset; {len(problems)} problems. JupyterLab check of lesson "
         f"01's explorer: {lab_word}."),
        "",
        ("Links out of the site (arXiv, d2l.ai, Colab, Binder) are not followed (no network); "
         "the badges of every lesson and exercise page are checked against the URLs its notebook "
         "should open."),
        "",
    ]


def page_table(pages):
    lines = ["| page | title | links | images | maths typeset |", "| --- | --- | --- | --- | --- |"]
    for page, facts in pages.items():
        title = facts["title"].split(" — ")[0].replace("|", "\\|")
        lines.append(f"| `{page}` | {title} | {len(facts['links'])} | {len(facts['images'])} | "
                     f"{facts['maths'] - facts['untypeset']} of {facts['maths']} |")
    return lines


def screenshots(folder, pages):
    from PIL import Image
    shots = sorted((folder / "screenshots").glob("*.png"))
    if not shots:
        return []
    with Image.open(shots[0]) as image:
        width, height = image.size
    lines = ["", f"## First screen of each lesson ({width} × {height} pixels)", ""]
    return lines + [f"![{s.stem}](screenshots/{s.name})" for s in shots]


def lab_section(lab):
    if lab is None:
        return []
    lines = ["", "## JupyterLab: lesson 01's cost explorer", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(lab["steps"], 1)]
    if "before" in lab:
        lines += ["", "Before and after the drag:", "",
                  "![before](lab_explorer_before.png) ![after](lab_explorer_after.png)"]
    if lab.get("log"):
        lines += ["", "JupyterLab's log:", "", "```", lab["log"], "```"]
    return lines
