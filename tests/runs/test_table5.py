"""nin_course.runs.table5: the Table 5 reductions against the statistics module, on made-up runs."""
import math
import statistics
from types import SimpleNamespace

import matplotlib
import pytest

from nin_course.runs import table5
from nin_course.runs.catalogue import REFERENCE_RUNS
from nin_course.train.history import History

matplotlib.use("Agg")

# (head, seed) -> (train accuracy, test accuracy)
ACCURACIES = {("gap", 0): (0.90, 0.62), ("gap", 1): (0.92, 0.60), ("gap", 2): (0.94, 0.61),
              ("fc", 0): (1.00, 0.52), ("fc", 1): (0.99, 0.55), ("fc", 2): (1.00, 0.53),
              ("fc+dropout", 0): (0.97, 0.58), ("fc+dropout", 1): (0.96, 0.56),
              ("fc+dropout", 2): (0.98, 0.615)}  # seed 2: better than GAP


def fake_run(head, seed, train_acc, test_acc, epochs=3):
    history = History()
    for epoch in range(1, epochs + 1):
        history.append(epoch=epoch, train_loss=2.3 / epoch, train_acc=train_acc,
                       test_loss=1.0, test_acc=test_acc, examples_per_sec=100.0, seconds=60.0)
    spec = SimpleNamespace(model_args={"head": head}, seed=seed, train_size=2500, test_size=2000)
    record = {"metrics": {"train_acc": train_acc, "test_acc": test_acc, "epochs": epochs,
                          "train_seconds": 60.0 * epochs}}
    return SimpleNamespace(spec=spec, record=record, history=history)


@pytest.fixture
def runs():
    # deliberately out of order: the table sorts by head (as in HEADS), then seed
    return {f"table5-{h}-seed{s}": fake_run(h, s, *acc)
            for (h, s), acc in sorted(ACCURACIES.items(), key=lambda kv: -kv[0][1])}


def test_run_names_are_reference_runs():
    assert set(table5.run_names()) == {n for n in REFERENCE_RUNS if n.startswith("table5-")}


def test_seed_table_has_one_row_per_run_with_its_errors(runs):
    table = table5.seed_table(runs)
    assert list(zip(table["head"], table["seed"])) == [
        (h, s) for h in ("gap", "fc", "fc+dropout") for s in (0, 1, 2)]
    row = table[(table["head"] == "fc") & (table["seed"] == 1)].iloc[0]
    assert row["train error %"] == pytest.approx(1.0)
    assert row["test error %"] == pytest.approx(45.0)
    assert row["gap (points)"] == pytest.approx(44.0)
    assert row["minutes"] == pytest.approx(3.0)


def test_seed_table_refuses_a_record_without_training_accuracy(runs):
    runs["table5-gap-seed0"].record["metrics"]["train_acc"] = None
    with pytest.raises(ValueError, match="train_acc.*nin_course.runs train table5-gap-seed0"):
        table5.seed_table(runs)


def test_head_summary_matches_the_statistics_module(runs):
    summary = table5.head_summary(table5.seed_table(runs))
    for head in ("gap", "fc", "fc+dropout"):
        test = [100 * (1 - ACCURACIES[head, s][1]) for s in range(3)]
        train = [100 * (1 - ACCURACIES[head, s][0]) for s in range(3)]
        gaps = [a - b for a, b in zip(test, train)]
        row = summary.loc[head]
        assert row["seeds"] == 3
        assert row["test error % mean"] == pytest.approx(statistics.mean(test))
        assert row["test error % sd"] == pytest.approx(statistics.stdev(test))
        assert row["train error % mean"] == pytest.approx(statistics.mean(train))
        assert row["gap (points) sd"] == pytest.approx(statistics.stdev(gaps))
        assert (row["test error % min"], row["test error % max"]) == pytest.approx(
            (min(test), max(test)))
    assert summary.loc["gap", "paper test error %"] == 10.41
    assert table5.ordering(summary) == "fc > fc+dropout > gap"


def test_paired_differences_are_taken_seed_by_seed(runs):
    diffs = table5.paired_differences(table5.seed_table(runs))
    fc_gap = [100 * (ACCURACIES["gap", s][1] - ACCURACIES["fc", s][1]) for s in range(3)]
    row = diffs.loc["fc - gap"]
    assert [row[f"seed {s}"] for s in range(3)] == pytest.approx(fc_gap)
    assert row["mean"] == pytest.approx(statistics.mean(fc_gap))
    assert row["sd"] == pytest.approx(statistics.stdev(fc_gap))
    assert row["first worse in"] == "3 of 3 seeds"
    assert row["paper"] == pytest.approx(11.59 - 10.41)
    assert diffs.loc["fc+dropout - gap", "first worse in"] == "2 of 3 seeds"


def test_paired_differences_leave_out_seeds_with_a_missing_run(runs):
    del runs["table5-fc-seed2"]
    row = table5.paired_differences(table5.seed_table(runs)).loc["fc - gap"]
    assert row["first worse in"] == "2 of 2 seeds" and "seed 2" not in row.dropna().index


def test_formatted_summary_shows_mean_and_spread(runs):
    text = table5.formatted(table5.head_summary(table5.seed_table(runs)))
    test = [100 * (1 - ACCURACIES["gap", s][1]) for s in range(3)]
    assert text.loc["gap", "test error %"] == (f"{statistics.mean(test):.2f} ± "
                                               f"{statistics.stdev(test):.2f}")
    assert text.loc["gap", "test error range"] == "38.00 to 40.00"


def test_paper_table_puts_the_dropout_to_gap_step_under_two_standard_errors():
    paper = table5.paper_table()
    se = math.sqrt(0.1088 * 0.8912 / 10_000) * 100  # the larger error of the step, 10.88%
    row = paper.loc["fc+dropout - gap"]
    assert row["difference (points)"] == pytest.approx(0.47)
    assert row["standard error (points)"] == pytest.approx(se)
    assert row["difference / s.e."] < 2
    assert paper.loc["fc - gap", "difference / s.e."] > 2


def test_plots_draw_every_run(runs):
    table = table5.seed_table(runs)
    ax = table5.plot_errors(table)
    assert len(ax.patches) == 3 and ax.get_ylim() == (0, 100)
    axes = table5.plot_curves(runs)
    assert len([line for line in axes[1].get_lines() if line.get_linestyle() == "-"]) == 9
