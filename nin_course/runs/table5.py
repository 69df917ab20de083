"""The paper's Table 5 at the course's scale: a GAP, an FC and an FC + dropout head, over seeds.

Reduces the `table5-{head}-seed{seed}` reference runs (catalogue.py) to the numbers lesson 07 shows:
each run's training and test error and the gap between them; per head, the mean and spread over
seeds; per pair of heads, the difference seed by seed (one seed gives every head the same images,
the same shuffles and the same start for the layers they share); and the paper's own table with
the noise of its measurement.

    runs = {name: load_run(name) for name in run_names()}
    table = seed_table(runs)        # one row per run
    head_summary(table)             # one row per head
"""
import math

import matplotlib.pyplot as plt
import pandas as pd

from ..models import HEADS
from .paper import paper_result

PAPER_TEST_SIZE = 10_000  # CIFAR-10's test set, on which Table 5's errors were measured
PAPER_ORDER = ("fc", "fc+dropout", "gap")  # Table 5, from the highest test error to the lowest
STEPS = (("fc", "fc+dropout"), ("fc+dropout", "gap"), ("fc", "gap"))  # the differences discussed


def run_names(seeds=(0, 1, 2)):
    """The reference runs of Table 5: ['table5-gap-seed0', ...], head by head."""
    return [f"table5-{head}-seed{seed}" for head in HEADS for seed in seeds]


def standard_error(error_percent, n):
    """Standard error (in points) of an error rate measured on n independent test images."""
    p = error_percent / 100
    return 100 * math.sqrt(p * (1 - p) / n)


def seed_table(runs):
    """{name: ReferenceRun} -> DataFrame, one row per run (sorted by head, then seed).

    Columns: head, seed, train images, test images, epochs, train error % (eval mode, on every
    training image: the record's metrics.train_acc), test error % (the whole test subset), gap
    (test minus train error, points), minutes (training, evaluation included).
    """
    rows = []
    for name, run in runs.items():
        m, spec = run.record["metrics"], run.spec
        if m.get("train_acc") is None:
            raise ValueError(f"the run {name!r} has no training accuracy in its record "
                             "(metrics.train_acc): retrain it with `python -m nin_course.runs "
                             f"train {name}`")
        train_error, test_error = 100 * (1 - m["train_acc"]), 100 * (1 - m["test_acc"])
        rows.append({"head": spec.model_args["head"], "seed": spec.seed,
                     "train images": spec.train_size, "test images": spec.test_size,
                     "epochs": m["epochs"], "train error %": train_error,
                     "test error %": test_error, "gap (points)": test_error - train_error,
                     "minutes": m["train_seconds"] / 60})
    order = {head: i for i, head in enumerate(HEADS)}
    return (pd.DataFrame(rows).sort_values(["head", "seed"], key=lambda c: c.map(order)
                                           if c.name == "head" else c).reset_index(drop=True))


def head_summary(table):
    """seed_table -> one row per head: the number of seeds; mean and standard deviation over
    seeds (n - 1 in the denominator) of the train error, test error and gap; the test error's
    lowest and highest seed; and the paper's test error (Table 5)."""
    rows = []
    for head, runs in table.groupby("head", sort=False):
        row = {"head": head, "seeds": len(runs)}
        for column in ("train error %", "test error %", "gap (points)"):
            row[f"{column} mean"] = runs[column].mean()
            row[f"{column} sd"] = runs[column].std(ddof=1) if len(runs) > 1 else math.nan
        row["test error % min"] = runs["test error %"].min()
        row["test error % max"] = runs["test error %"].max()
        row["paper test error %"] = paper_result("cifar10", head, table="Table 5").test_error
        rows.append(row)
    return pd.DataFrame(rows).set_index("head")


def paired_differences(table, steps=STEPS):
    """seed_table -> one row per step (a, b): a's test error minus b's, seed by seed (one column
    per seed; seeds where either run is missing are left out), their mean and standard
    deviation, in how many seeds a is worse (the paper's direction), and the paper's difference."""
    errors = table.pivot(index="seed", columns="head", values="test error %")
    rows = []
    for a, b in steps:
        diff = (errors[a] - errors[b]).dropna()
        paper = (paper_result("cifar10", a, table="Table 5").test_error
                 - paper_result("cifar10", b, table="Table 5").test_error)
        rows.append({"step": f"{a} - {b}",
                     **{f"seed {seed}": d for seed, d in diff.items()},
                     "mean": diff.mean(), "sd": diff.std(ddof=1) if len(diff) > 1 else math.nan,
                     "first worse in": f"{int((diff > 0).sum())} of {len(diff)} seeds",
                     "paper": paper})
    return pd.DataFrame(rows).set_index("step")


def formatted(summary):
    """head_summary -> the same numbers as text, one column per measure: 'mean ± sd' (points,
    2 decimals) and the test error's range over the seeds."""
    def mean_sd(head, column):
        row = summary.loc[head]
        return f"{row[column + ' mean']:.2f} ± {row[column + ' sd']:.2f}"
    columns = ("train error %", "test error %", "gap (points)")
    return pd.DataFrame({
        "seeds": summary["seeds"],
        **{column: [mean_sd(head, column) for head in summary.index] for column in columns},
        "test error range": [f"{lo:.2f} to {hi:.2f}" for lo, hi in
                             zip(summary["test error % min"], summary["test error % max"])],
        "paper test error %": summary["paper test error %"]}, index=summary.index)


def paper_table(n=PAPER_TEST_SIZE):
    """The paper's Table 5 with the standard error of each test error on n test images, and
    each step's difference in points and in those standard errors (the larger error's)."""
    errors = {head: paper_result("cifar10", head, table="Table 5").test_error
              for head in PAPER_ORDER}
    rows = []
    for a, b in STEPS:
        diff = errors[a] - errors[b]
        se = standard_error(max(errors[a], errors[b]), n)
        rows.append({"step": f"{a} - {b}", "difference (points)": diff,
                     "standard error (points)": se, "difference / s.e.": diff / se})
    return pd.DataFrame(rows).set_index("step")


def ordering(summary):
    """head_summary -> the heads from the highest mean test error to the lowest, as 'a > b > c'."""
    return " > ".join(summary["test error % mean"].sort_values(ascending=False).index)


def plot_errors(table, ax=None):
    """Each run's train and test error (one dot per seed), each head's mean test error (a bar)
    and the paper's (a cross): the gap between the dots is the overfitting."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    heads = list(dict.fromkeys(table["head"]))
    for i, head in enumerate(heads):
        runs = table[table["head"] == head]
        ax.bar(i, runs["test error %"].mean(), width=0.6, color="C0", alpha=0.25,
               label="mean test error" if i == 0 else None)
        ax.scatter([i - 0.1] * len(runs), runs["train error %"], color="C1", zorder=3,
                   label="train error (a seed)" if i == 0 else None)
        ax.scatter([i + 0.1] * len(runs), runs["test error %"], color="C0", zorder=3,
                   label="test error (a seed)" if i == 0 else None)
        ax.scatter(i, paper_result("cifar10", head, table="Table 5").test_error, marker="x",
                   s=60, color="k", zorder=3, label="paper, Table 5" if i == 0 else None)
    ax.set(xticks=range(len(heads)), xticklabels=heads, ylabel="CIFAR-10 error %", ylim=(0, 100))
    ax.legend(fontsize="small", loc="upper right")
    return ax


def plot_curves(runs, axes=None):
    """{name: ReferenceRun} -> training loss and test error by epoch, one colour per head,
    one line per seed."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    colours = {head: f"C{i}" for i, head in enumerate(HEADS)}
    labelled = set()
    for run in runs.values():
        head, h = run.spec.model_args["head"], run.history
        label = None if head in labelled else head
        labelled.add(head)
        axes[0].plot(h.epoch, h.train_loss, color=colours[head], alpha=0.7, label=label)
        axes[1].plot(h.epoch, [100 * (1 - a) for a in h.test_acc], color=colours[head],
                     alpha=0.7, label=label)
    axes[0].axhline(math.log(10), color="grey", linestyle=":", label="ln 10")
    axes[0].set(xlabel="epoch", ylabel="training loss", ylim=(0, None),
                title="training loss (dropout on)")
    axes[1].axhline(90, color="grey", linestyle=":", label="chance")
    axes[1].set(xlabel="epoch", ylabel="test error %", ylim=(0, 100), title="test error")
    for ax in axes:
        ax.legend(fontsize="small")
    return axes
