"""The runs the course describes, trains and shows.

- `profiles`: the run profiles `smoke`, `cpu`, `cuda` (how much data and how many epochs).
- `spec`: `RunSpec`, the one description of a training run, its key, and its loaders.
- `recipes`: the chapter's Fashion-MNIST recipe (ours and the book's own) and a fast one.
- `paper`: the paper's CIFAR recipe, its published results, cached CIFAR runs.
- `experiments`: one fixed training budget for comparing variants (the exercises).
- `table5`: the paper's Table 5 at the course's scale, reduced from reference runs.
- `catalogue`: the reference runs, each name with its RunSpec (`REFERENCE_RUNS`).
- `store`: the reference runs, trained once into `runs/` and loaded with `load_run`
  (`python -m nin_course.runs list | train NAME | report`).
- `machine`: what a run ran on: processor, GPU, package versions.
"""
