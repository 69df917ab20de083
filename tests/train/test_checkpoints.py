"""nin_course/train/checkpoints.py: a checkpoint damaged on disk is refused, never loaded with wrong
weights; saves reach the disk before they replace the old file and leave no temporary files;
incomplete checkpoints are named. The reference is the checkpoint as it was saved."""
import os
import warnings

import pytest
import torch
from torch import nn

from nin_course.train import checkpoints
from nin_course.train.checkpoints import (digest, load_checkpoint, orphans, read_checkpoint,
                                          save_checkpoint)
from nin_course.train.history import History
from nin_course.train.loop import fit

QUIET = dict(progress=False, live_plot=False, device="cpu")

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def tiny_model():
    """(N, 1, 4, 4) -> (N, 3): a 3x3 convolution to 3 maps, averaged."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def batches(n=32, batch_size=8):
    generator = torch.Generator().manual_seed(1)
    templates = torch.randn(3, 1, 4, 4, generator=generator)
    y = torch.arange(n) % 3
    X = templates[y] + 0.3 * torch.randn(n, 1, 4, 4, generator=generator)  # each class's template
    return [(X[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]


def saved(path, history=True):
    """A checkpoint of a model after one SGD step, at `path`; returns (model, optimizer)."""
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    X, y = batches()[0]
    nn.functional.cross_entropy(model(X), y).backward()
    optimizer.step()
    row = dict(epoch=1, train_loss=1.0, train_acc=0.5, test_loss=1.1, test_acc=0.5,
               examples_per_sec=10.0, seconds=1.0)
    history = History.from_dict({k: [v] for k, v in row.items()}) if history else None
    save_checkpoint(path, model, optimizer, epoch=1, config={"lr": 0.1},
                    history=None if history is None else history.as_dict())
    return model, optimizer


def flip(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x5A
    path.write_bytes(bytes(raw))


def test_a_flipped_byte_in_the_weights_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    model, _ = saved(path)
    weight = model[0].weight.detach().numpy().tobytes()
    flip(path, path.read_bytes().index(weight) + 5)  # inside the stored convolution weights
    before, fresh = path.read_bytes(), tiny_model()
    weights = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError, match=f"'{path}' is damaged: its contents do not match the "
                                         "SHA-256.*Delete it.*or resume from another"):
        load_checkpoint(path, fresh)
    assert path.read_bytes() == before  # the file is left for the user to inspect or delete
    torch.testing.assert_close(fresh.state_dict(), weights)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # a flip in the pickle's header
def test_no_flipped_byte_loads_as_a_different_checkpoint(tmp_path):
    """Flip bytes all over the file: each load fails with a ValueError naming the file, or gives
    exactly what was saved (a byte of zip padding); none gives other contents silently."""
    path, damaged = tmp_path / "run.ckpt", tmp_path / "damaged.ckpt"
    saved(path)
    reference, good = digest(read_checkpoint(path)), path.read_bytes()
    outcomes = set()
    for offset in range(0, len(good), 29):
        damaged.write_bytes(good)
        flip(damaged, offset)
        try:
            outcomes.add(digest(read_checkpoint(damaged)) == reference or "DIFFERENT")
        except ValueError as err:
            assert str(damaged) in str(err)
            outcomes.add("refused")
    assert "DIFFERENT" not in outcomes and "refused" in outcomes


def test_a_checkpoint_without_a_checksum_still_loads(tmp_path):
    """Checkpoints written before the checksum existed load as before, without a word."""
    path = tmp_path / "old.ckpt"
    model, _ = saved(path)
    old = torch.load(path, weights_only=True)
    del old["sha256"]
    torch.save(old, path)
    fresh = tiny_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_checkpoint(path, fresh, torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9))
    torch.testing.assert_close(fresh.state_dict(), model.state_dict())


@pytest.mark.parametrize("change, what", [
    (lambda c: c.pop("model"), "lacks model"),
    (lambda c: c.pop("rng"), "lacks rng"),
    (lambda c: c.update(model=None), "holds no model state_dict"),
    (lambda c: c.update(extra=1), "holds entries it does not write \\('extra'\\)"),
])
def test_an_incomplete_checkpoint_is_named(change, what, tmp_path):
    path = tmp_path / "run.ckpt"
    saved(path)
    checkpoint = torch.load(path, weights_only=True)
    change(checkpoint)
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=f"'{path}' has the nin_course checkpoint tag but {what}"
                                         ".*Delete it"):
        load_checkpoint(path, tiny_model())
    with pytest.raises(ValueError, match="has the nin_course checkpoint tag"):  # not KeyError
        fit(tiny_model(), batches(), num_epochs=2, checkpoint_path=path, resume=True, **QUIET)


def test_save_reaches_the_disk_before_it_replaces_the_old_file(tmp_path, monkeypatch):
    calls, fsync, replace = [], os.fsync, os.replace
    monkeypatch.setattr(checkpoints.os, "fsync", lambda fd: (calls.append("fsync"), fsync(fd)))
    monkeypatch.setattr(checkpoints.os, "replace",
                        lambda a, b: (calls.append("replace"), replace(a, b)))
    saved(tmp_path / "run.ckpt")
    assert calls[:2] == ["fsync", "replace"]  # then the folder's entry, where allowed


def test_a_save_cut_short_keeps_the_old_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    saved(path)
    before = path.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(checkpoints.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        saved(path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["run.ckpt"]


def test_orphans_of_a_killed_run_are_removed_and_nothing_else(tmp_path):
    """A killed process leaves its temporary file behind; the next save of that checkpoint
    removes it, and only the package's own temporary files of that very checkpoint."""
    path = tmp_path / "run.ckpt"
    orphan = tmp_path / ".run.ckpt.k3j_9x2a.nin_course.tmp"  # as mkstemp names them
    keep = [".other.ckpt.k3j_9x2a.nin_course.tmp",  # another run's, perhaps being written now
            ".run.ckpt.k3j_9x2a.tmp", ".run.ckpt.toolong123.nin_course.tmp", ".tmp-k3j_9x2a.ckpt",
            "run.ckpt.bak", ".run.ckpt.k3j_9x2a.nin_course.tmp.mine"]
    for name in (orphan.name, *keep):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / ".run.ckpt.folder123.nin_course.tmp").mkdir()  # a folder is never removed
    assert orphans(path) == [str(orphan)]
    saved(path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        [*keep, "run.ckpt", ".run.ckpt.folder123.nin_course.tmp"])
    read_checkpoint(path)


def test_resume_from_a_checkpoint_saved_without_history(tmp_path):
    """save_checkpoint(history=None): the run resumes, the epochs before it shown as NaN."""
    path = tmp_path / "run.ckpt"
    model, _ = saved(path, history=False)
    history = fit(model, batches(), num_epochs=3, lr=0.1, checkpoint_path=path, resume=True,
                  **QUIET)
    assert history.epoch == [1, 2, 3]
    assert history.train_loss[0] != history.train_loss[0]  # NaN: not recorded
    assert all(loss < 5 for loss in history.train_loss[1:])
    assert load_checkpoint(path)["epoch"] == 3
