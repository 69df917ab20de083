"""The course website (tools/site_build.py): how notebooks become pages, and a full offline build.

The browser check (make site-check: Chromium, JupyterLab) is too slow and needs too much for CI;
its committed report is site/check/report.md.
"""
import json
import re
import runpy
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import site_build

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {"repository_url": "https://github.com/someone/nin-course", "branch": "main",
            "lab_url": "http://localhost:8888/lab/tree"}
WIDGET = "application/vnd.jupyter.widget-view+json"


def widget_output(text):
    return new_output("display_data", data={WIDGET: {"model_id": "abc", "version_major": 2,
                                                    "version_minor": 0}, "text/plain": text})


def test_launch_links_are_the_urls_colab_and_binder_expect():
    links = site_build.launch_links("notebooks/01_x.ipynb", SETTINGS)
    assert links == {
        "lab": "http://localhost:8888/lab/tree/notebooks/01_x.ipynb",
        "colab": "https://colab.research.google.com/github/someone/nin-course/blob/main/"
                 "notebooks/01_x.ipynb",
        "binder": "https://mybinder.org/v2/gh/someone/nin-course/main"
                  "?labpath=notebooks%2F01_x.ipynb",
        "download": "01_x.ipynb"}


def test_a_repository_url_that_is_not_github_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="settings.toml"):
        site_build.launch_links("notebooks/01_x.ipynb", {**SETTINGS,
                                                         "repository_url": "https://example.org/x"})


def test_the_repository_url_is_one_setting_that_the_environment_can_override(monkeypatch):
    monkeypatch.setenv("NIN_COURSE_REPOSITORY_URL", "https://github.com/a/b")
    assert site_build.load_settings()["repository_url"] == "https://github.com/a/b"


def test_badges_go_under_the_title_and_the_original_notebook_is_untouched():
    nb = new_notebook(cells=[new_markdown_cell("# 1. Title\n\nIntro text."), new_code_cell("1")])
    before = json.dumps(nb, sort_keys=True)
    page, notes = site_build.prepare_notebook(nb, "notebooks/01_x.ipynb", SETTINGS)
    title, badges, rest = page["cells"][0]["source"].split("\n\n", 2)
    assert title == "# 1. Title" and rest.strip() == "Intro text." and notes == []
    assert re.findall(r'href="([^"]+)"', badges) == list(
        site_build.launch_links("notebooks/01_x.ipynb", SETTINGS).values())
    assert json.dumps(nb, sort_keys=True) == before


def test_a_widget_becomes_its_stored_text_with_a_note_to_run_the_notebook():
    nb = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell(
        "explorer", outputs=[widget_output("3x3 conv   221,312")])])
    page, _ = site_build.prepare_notebook(nb, "notebooks/01_x.ipynb", SETTINGS)
    (output,) = page["cells"][1]["outputs"]
    assert WIDGET not in output["data"] and "3x3 conv   221,312" in output["data"]["text/html"]
    assert "run it to use it" in output["data"]["text/html"]


def test_a_progress_bar_is_shown_as_text_and_one_stored_unfinished_is_noted():
    bars = [widget_output("epoch 1/2: 100%|##########| 40/40 [00:03<00:00, 12.0it/s]"),
            widget_output("epoch 2/2:   0%|          | 0/40 [00:00<?, ?it/s]")]
    nb = new_notebook(cells=[new_markdown_cell("# T"), new_code_cell("fit()", outputs=bars)])
    page, notes = site_build.prepare_notebook(nb, "notebooks/07_x.ipynb", SETTINGS)
    assert all('class="course-progress"' in o["data"]["text/html"]
               for o in page["cells"][1]["outputs"])
    assert notes == ["notebooks/07_x.ipynb cell 1: a progress bar stored at 0% (0/40), "
                     "not its final state"]


def test_every_lesson_and_exercise_page_has_badges_and_no_widget_left():
    paths = site_build.notebook_paths()
    assert any(p.parts[0] == "notebooks" for p in paths)
    assert any(p.parts[0] == "exercises" for p in paths)
    assert not any("solutions" in p.parts or "source" in p.parts for p in paths)
    for path in paths:
        page, _ = site_build.prepare_notebook(json.loads((ROOT / path).read_text()), path, SETTINGS)
        text = json.dumps(page)
        assert "course-launch" in text and WIDGET not in text, path


def test_the_sphinx_configuration_needs_no_network():
    conf = runpy.run_path(str(ROOT / "site" / "conf.py"))
    assert conf["nb_execution_mode"] == "off"  # pages come from the stored outputs
    assert conf["nb_ipywidgets_js"] == {}  # ipywidgets' scripts would come from a CDN
    assert not conf["mathjax_path"].startswith(("http:", "https:", "//"))


def test_the_site_builds_offline_and_every_page_loads_only_local_scripts(tmp_path):
    pytest.importorskip("myst_nb")
    site_build.stage(tmp_path, SETTINGS)
    assert site_build.sphinx(tmp_path, SETTINGS) == 0
    html = tmp_path / "html"
    for path in site_build.notebook_paths():
        page = (html / path).with_suffix(".html").read_text()
        assert (html / path).read_bytes() == (ROOT / path).read_bytes(), \
            f"{path} is not downloadable, as committed, beside its page"
        outside = re.findall(r'<(?:script|link)[^>]+(?:src|href)="((?:https?:)?//[^"]+)"', page)
        assert outside == [], f"{path} loads {outside}: the page would need a network connection"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()


BAD_PAGE = """<html><head><title>bad</title><script src="https://cdn.example.org/x.js"></script>
</head><body><article><p>Raw $x^2$ here.</p><img src="missing.png">
<a href="sub/page.html#nowhere">anchor</a> <a href="nope.html">page</a> <a href="x.ipynb">file</a>
</article></body></html>"""


def test_the_browser_check_finds_what_a_reader_would_miss(tmp_path):
    """tools/site_check.py on a page with every fault it looks for (in Chromium, where present)."""
    from tools import site_check
    if not (Path(site_check.CHROMIUM).exists() and Path(site_check.CHROMEDRIVER).exists()):
        pytest.skip("Chromium and chromium-driver are missing (make site-check installs them)")
    pytest.importorskip("selenium")
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(BAD_PAGE)
    (tmp_path / "sub" / "page.html").write_text("<html><head><title>ok</title></head><body>"
                                                "<article id='top'>fine</article></body></html>")
    driver = site_check.chrome()
    try:
        with site_check.serve(tmp_path) as (base, failed):
            pages, problems = site_check.crawl(driver, base, tmp_path / "shots", SETTINGS)
    finally:
        driver.quit()
    found = "\n".join(problems + failed)
    for fault in ("image did not load: " + base + "missing.png", "raw maths in the text",
                  "requested from outside the site: https://cdn.example.org/x.js",
                  "missing anchor: sub/page.html#nowhere", "broken link to x.ipynb",
                  "404 /nope.html"):
        assert fault in found, f"the check missed: {fault}\n{found}"
    assert "sub/page.html" in pages
