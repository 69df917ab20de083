"""Sphinx configuration of the course website; tools/site_build.py (make site) runs Sphinx.

Sphinx + myst-nb + sphinx-book-theme, the stack Jupyter Book 1 is built on: every notebook is
rendered from its stored outputs (nothing is executed), and the page needs no network
connection: MathJax is served from the site (sphinx-mathjax-offline) and no widget JavaScript
is loaded from a CDN.
"""
import os
import tomllib
from pathlib import Path

SETTINGS = tomllib.loads((Path(__file__).parent / "settings.toml").read_text())

project = "Network In Network, from the 1×1 convolution up"
author = "the nin-course authors"
copyright = "the nin-course authors"

extensions = ["myst_nb", "sphinx-mathjax-offline"]
root_doc = "index"
exclude_patterns = ["**/.ipynb_checkpoints"]

# myst-nb: render what the notebooks store, never run them.
nb_execution_mode = "off"
nb_ipywidgets_js = {}  # ipywidgets' embed script comes from a CDN; widgets are stills (site_build)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

# MathJax 3 from the site itself (sphinx-mathjax-offline copies it to _static/mathjax).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Network In Network"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_favicon = "_static/favicon.svg"
html_extra_path = [os.environ.get("NIN_COURSE_SITE_EXTRA", "_build/extra")]  # the .ipynb files
html_last_updated_fmt = None
html_show_sourcelink = False
html_context = {"default_mode": "light"}  # the theme's own default, "", logs a console error
html_theme_options = {
    "repository_url": os.environ.get("NIN_COURSE_REPOSITORY_URL", SETTINGS["repository_url"]),
    "repository_branch": SETTINGS["branch"],
    "use_repository_button": False,  # every page has its own badges instead (site_build.py)
    "use_download_button": False,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "navbar_persistent": [],  # one search field, the sidebar's (the header repeated it)
}
