"""Training a network: how a run is set up, the loop, and what it leaves behind.

- `config`: `TrainConfig` (what changes the result) and `Runtime` (how it is run).
- `device`: which device a run uses, and whether it computes in bf16 or channels-last.
- `loop`: `fit` and `evaluate`: the epochs, the optimizer and schedule, the progress bar.
- `stuck`: when to stop a run that is not learning (a loss NaN, stuck at ln(C), or diverged).
- `plateau`: why a loss sits at ln(C): dead class maps, counted, and the changes that get a
  network learning.
- `history`: a run's `History`, one row per epoch.
- `checkpoints`: resumable runs, checksummed and written atomically.
- `seeding`: `seed_everything`, for repeatable runs.
"""
