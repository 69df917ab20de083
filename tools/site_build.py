"""Build the course website from the committed notebooks, running none of them (make site).

The lessons (notebooks/NN_*.ipynb, executed and committed) and the exercises' student versions
(exercises/NN_*.ipynb) are copied into site/_build/src with two changes, and Sphinx with myst-nb
renders them from their stored outputs (execution off) into site/_build/html:

- under each title, badges that open the notebook in JupyterLab (after `make lab`), in Colab and
  on Binder, and a link that downloads it (the URLs come from site/settings.toml);
- an ipywidgets output, which needs a live kernel, becomes the text the widget stored beside
  itself (its first state) with a note to run the notebook; a progress bar becomes its text.

Every figure, table and printed output is the notebook's own. The notebooks themselves are
copied, unchanged, beside their pages (site/_build/html/notebooks/NN_*.ipynb).

    python -m tools.site_build            # site/_build/html/index.html
"""
import argparse
import copy
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
BUILD = SITE / "_build"
PAGES = ("notebooks/[0-9][0-9]_*.ipynb", "exercises/[0-9][0-9]_*.ipynb")
WIDGET = "application/vnd.jupyter.widget-view+json"
# tqdm's text: "epoch 1/2:  40%|####      | 16/40 [00:03<00:05, 4.2it/s]"
PROGRESS_BAR = re.compile(r"(\d+)%\|.*\|\s*(\d+)/(\d+)")
GITHUB = re.compile(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?")


def load_settings(path=SITE / "settings.toml"):
    """site/settings.toml as a dict; NIN_COURSE_REPOSITORY_URL, if set, overrides its URL."""
    settings = tomllib.loads(Path(path).read_text())
    settings["repository_url"] = os.environ.get("NIN_COURSE_REPOSITORY_URL",
                                                settings["repository_url"])
    return settings


def notebook_paths(root=ROOT):
    """The pages' notebooks, repository-relative: the lessons, then the exercises."""
    return [p.relative_to(root) for pattern in PAGES for p in sorted(root.glob(pattern))]


def launch_links(path, settings):
    """Where a notebook (a repository-relative path) opens: JupyterLab, Colab, Binder, a file.

    Colab opens github/<owner>/<name>/blob/<branch>/<path>; Binder builds the repository at
    that branch and opens <path> in JupyterLab (labpath).
    """
    match = GITHUB.fullmatch(settings["repository_url"])
    if match is None:
        raise ValueError(f"repository_url {settings['repository_url']!r} in site/settings.toml "
                         "is not a GitHub repository URL (https://github.com/<owner>/<name>)")
    owner, name = match.groups()
    path, branch = Path(path).as_posix(), settings["branch"]
    return {
        "lab": f"{settings['lab_url'].rstrip('/')}/{path}",
        "colab": f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{path}",
        "binder": (f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}"
                   f"?labpath={quote(path, safe='')}"),
        "download": Path(path).name,  # copied beside the page, which is one folder deep
    }


def badges_html(links):
    """The badge row under a page's title (raw HTML in the notebook's first markdown cell)."""
    badges = [("lab", "badge-jupyterlab.svg", "Open in JupyterLab",
               "in JupyterLab, after make lab in a clone of the repository"),
              ("colab", "badge-colab.svg", "Open in Colab", "in Google Colab"),
              ("binder", "badge-binder.svg", "Launch on Binder", "on mybinder.org"),
              ("download", "badge-download.svg", "Download the notebook", "the .ipynb file")]
    items = [f'<a class="course-badge" href="{html.escape(links[key])}" title="Open {title}">'
             f'<img src="../_static/{image}" alt="{alt}" height="20"></a>'
             for key, image, alt, title in badges]
    return '<p class="course-launch">\n' + "\n".join(items) + "\n</p>"


def add_badges(nb, links):
    """Put the badge row right under the title line of the notebook's first markdown cell."""
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    title, _, rest = "".join(cell["source"]).partition("\n")
    cell["source"] = f"{title}\n\n{badges_html(links)}\n{rest}"


def still_output(output):
    """A widget output as what a page can show without a kernel: its stored text and a note.

    Returns (new output, progress) where progress is tqdm's (percent, done, total) for a progress
    bar, else None.
    """
    text = "".join(output["data"].get("text/plain", ""))
    bar = PROGRESS_BAR.search(text)
    if bar:
        body = f'<pre class="course-progress">{html.escape(text)}</pre>'
    else:
        body = ('<div class="course-widget-still"><p class="course-widget-note">An interactive '
                "widget, shown here in its first state: open this notebook (badges at the top) "
                "and run it to use it.</p>"
                f"<pre>{html.escape(text)}</pre></div>")
    still = {"output_type": "display_data", "metadata": {},
             "data": {"text/html": body, "text/plain": text}}
    return still, (tuple(int(g) for g in bar.groups()) if bar else None)


def prepare_notebook(nb, path, settings):
    """A copy of `nb` for its page, and notes on what it stores that a page cannot show well."""
    nb, notes = copy.deepcopy(nb), []
    add_badges(nb, launch_links(path, settings))
    for index, cell in enumerate(nb["cells"]):
        outputs = cell.get("outputs", [])
        for k, output in enumerate(outputs):
            if WIDGET not in output.get("data", {}):
                continue
            outputs[k], progress = still_output(output)
            if progress and progress[1] < progress[2]:
                notes.append(f"{Path(path).as_posix()} cell {index}: a progress bar stored at "
                             f"{progress[0]}% ({progress[1]}/{progress[2]}), not its final state")
    nb["metadata"].pop("widgets", None)  # widget state would load ipywidgets' JavaScript
    return nb, notes


def build_notes(settings=None, root=ROOT):
    """prepare_notebook's notes for every page, without writing anything."""
    settings = settings or load_settings()
    return [note for path in notebook_paths(root)
            for note in prepare_notebook(json.loads((root / path).read_text()), path, settings)[1]]


def stage(build=BUILD, settings=None, root=ROOT):
    """Write the Sphinx source (build/src) and the downloadable notebooks (build/extra).

    Returns the notes of prepare_notebook for every page.
    """
    settings = settings or load_settings()
    src, extra = Path(build) / "src", Path(build) / "extra"
    for folder in (src, extra):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    shutil.copy(SITE / "index.md", src / "index.md")
    notes = []
    for path in notebook_paths(root):
        page, page_notes = prepare_notebook(json.loads((root / path).read_text()), path, settings)
        notes += page_notes
        for folder in (src, extra):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (src / path).write_text(json.dumps(page, indent=1, ensure_ascii=False) + "\n")
        shutil.copy(root / path, extra / path)  # the download: the notebook as committed
    return notes


def sphinx(build=BUILD, settings=None):
    """Run Sphinx on build/src (written by stage) into build/html; returns its exit status."""
    settings = settings or load_settings()
    build = Path(build).resolve()
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "--keep-going",
               "-c", str(SITE), "-d", str(build / "doctrees"), str(build / "src"),
               str(build / "html")]
    env = {**os.environ, "NIN_COURSE_SITE_EXTRA": str(build / "extra"),
           "NIN_COURSE_REPOSITORY_URL": settings["repository_url"]}
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.site_build",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=BUILD, help="build folder (site/_build)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    settings = load_settings()
    if "OWNER" in settings["repository_url"]:
        print(f"note: repository_url is the placeholder {settings['repository_url']}: set it in "
              "site/settings.toml (or NIN_COURSE_REPOSITORY_URL) for working Colab/Binder badges")
    for note in stage(args.build, settings):
        print("note:", note)
    status = sphinx(args.build, settings)
    if status:
        sys.exit(f"make site: sphinx-build failed (exit {status}); see above")
    seconds = time.perf_counter() - start
    (args.build / "build.json").write_text(json.dumps({"seconds": round(seconds, 1)}) + "\n")
    print(f"site built in {seconds:.0f} s: {args.build / 'html' / 'index.html'}")


if __name__ == "__main__":
    main()
