"""A training run's `History`: one row per epoch of `fit` (losses, accuracies, speed, time)."""
import math
from dataclasses import dataclass, field, fields


@dataclass
class History:
    """What happened in each epoch of `fit`: one entry per epoch in every list.

    test_loss and test_acc are NaN when fit had no test data; examples_per_sec is the training
    throughput; seconds the whole epoch, evaluation included.
    """
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    examples_per_sec: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def append(self, **row):
        """Add one epoch: a value for every field."""
        if row.keys() != {f.name for f in fields(self)}:
            raise ValueError(f"History.append needs exactly {[f.name for f in fields(self)]}")
        for name, value in row.items():
            getattr(self, name).append(value)

    def as_dict(self):
        """{field: list of per-epoch values}: plain Python, for checkpoints and plots."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d):
        """The History that `as_dict()` described."""
        names = [f.name for f in fields(cls)]
        if set(d) != set(names) or len({len(d[n]) for n in names}) != 1:
            raise ValueError(f"History.from_dict needs lists of equal length for {names}; "
                             f"got keys {sorted(d)}")
        return cls(**{n: list(d[n]) for n in names})

    @classmethod
    def unrecorded(cls, num_epochs):
        """`num_epochs` epochs whose metrics were not saved: numbered rows of NaN."""
        nan = [math.nan] * num_epochs
        return cls(list(range(1, num_epochs + 1)), *(list(nan) for _ in range(6)))

    def __len__(self):
        return len(self.epoch)

    def summary(self):
        """One line about the last epoch."""
        if not self:
            return "no epochs yet"
        test = "" if math.isnan(self.test_acc[-1]) else f", test acc {self.test_acc[-1]:.3f}"
        return (f"epoch {self.epoch[-1]}: loss {self.train_loss[-1]:.3f}, train acc "
                f"{self.train_acc[-1]:.3f}{test}, {self.examples_per_sec[-1]:,.0f} examples/s")

    def __repr__(self):
        return f"History({len(self)} epochs; {self.summary()})"

    def to_dataframe(self):
        """A pandas DataFrame, one row per epoch, indexed by epoch."""
        import pandas as pd
        return pd.DataFrame(self.as_dict()).set_index("epoch")
