"""Resumable runs: checkpoints, and the random number generators' states they keep.

A checkpoint is a dict written with `torch.save`: the model's, optimizer's and scheduler's
states, the epoch just finished, the History so far, the TrainConfig (as a plain dict) and the
random number generators' states, so that a resumed run draws the same shuffles and dropout
masks as an uninterrupted one. It is read back with `weights_only=True`: loading one never runs
code from the file. It also holds the SHA-256 of all of that ("sha256"), checked on reading, so
a file damaged on disk is refused rather than loaded with wrong weights; a checkpoint written
before there was a checksum is read without one.

Files are written atomically (a temporary file `.<name>.<random>.nin_course.tmp` next to it,
flushed to disk, then `os.replace`), so a crash during a save leaves the previous checkpoint
whole; the next save removes the temporary files that a killed run left for that checkpoint.
Nothing here overwrites a file that `fit` was not asked to continue (see
`check_checkpoint_path`).
"""
import contextlib
import glob
import hashlib
import os
import random
import re
import tempfile

import numpy as np
import torch

from .history import History

FORMAT = "nin_course.checkpoint/1"
KEYS = ("epoch", "model", "optimizer", "optimizer_type", "scheduler", "history", "config", "rng")
TMP_SUFFIX = ".nin_course.tmp"  # `.<checkpoint name>.<8 random characters>` + this


def check_checkpoint_path(path, resume):
    """Raise FileExistsError if `path` exists and we were not asked to resume from it."""
    if path is not None and not resume and os.path.exists(path):
        raise FileExistsError(f"the checkpoint {os.fspath(path)!r} already exists and would be "
                              "overwritten. Pass resume=True to continue that run, or choose "
                              "another checkpoint_path.")


def check_writable(path):
    """Raise PermissionError, naming `path`, unless a checkpoint can be written there.

    Called before the first epoch, so that an unwritable location is found before, not after,
    the training time it would have cost. Creates the folder if it is missing.
    """
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.remove(tmp)
    except OSError as err:
        raise PermissionError(f"cannot write the checkpoint {os.fspath(path)!r}: {err.strerror} "
                              f"({folder!r}). Choose a checkpoint_path in a folder you can "
                              "write to, or checkpoint_path=None for none.") from err


def save_checkpoint(path, model, optimizer=None, scheduler=None, *, epoch, history=None,
                    config=None, generator=None):
    """Write the state of a run after `epoch` epochs to `path`, atomically, with its SHA-256.

    `history` and `config` are plain dicts (History.as_dict(), asdict(TrainConfig)), history
    None if not kept (a resumed run then shows those epochs as NaN); `generator` is the data
    loader's own torch.Generator, if it has one (its shuffles come from it).
    """
    checkpoint = {
        "format": FORMAT, "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "optimizer_type": None if optimizer is None else type(optimizer).__name__,
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "history": history, "config": config, "rng": rng_state(generator),
    }
    checkpoint["sha256"] = digest(checkpoint)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, or a power cut may leave it empty
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Flush the folder's entry for the renamed file to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and Windows) cannot fsync a folder
    finally:
        os.close(fd)


def orphans(path):
    """The temporary files that killed saves of the checkpoint `path` left next to it."""
    folder, name = os.path.split(os.path.abspath(path))
    ours = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}{re.escape(TMP_SUFFIX)}")
    candidates = glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*"))
    return sorted(p for p in candidates
                  if ours.fullmatch(os.path.basename(p)) and os.path.isfile(p))


def remove_orphans(path):
    """Remove `orphans(path)`: only this package's temporary files for that checkpoint."""
    for orphan in orphans(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(orphan)


def digest(checkpoint):
    """SHA-256 (hex) of everything in `checkpoint` but its "sha256": tensors' dtypes, shapes and
    bytes, and the repr of every other value, in order."""
    sha = hashlib.sha256()
    _hash_into(sha, {k: v for k, v in checkpoint.items() if k != "sha256"})
    return sha.hexdigest()


def _hash_into(sha, value):
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        sha.update(f"tensor {tensor.dtype} {tuple(value.shape)};".encode())
        sha.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        sha.update(f"dict {len(value)};".encode())
        for key, item in value.items():
            _hash_into(sha, key)
            _hash_into(sha, item)
    elif isinstance(value, (list, tuple)):
        sha.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _hash_into(sha, item)
    else:
        sha.update(f"{type(value).__name__} {value!r};".encode())


def load_checkpoint(path, model=None, optimizer=None, scheduler=None, restore_rng=False,
                    generator=None, checkpoint=None):
    """Read a checkpoint written by `save_checkpoint` and load it into the objects given.

    restore_rng=True also restores the random number generators (and `generator`'s state).
    `checkpoint`: what `read_checkpoint(path)` already returned, so the file is not read again.

    Returns the checkpoint dict (its "epoch", "history" and "config" are plain values).
    Raises ValueError, having changed nothing, if the file is not a nin_course checkpoint or was
    saved from a different model or optimizer. The file itself is only read.
    """
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    if model is not None:
        _check_fits(model, checkpoint["model"], path)
    if optimizer is not None and checkpoint["optimizer_type"] != type(optimizer).__name__:
        raise ValueError(f"the checkpoint {os.fspath(path)!r} was saved with the optimizer "
                         f"{checkpoint['optimizer_type']}, not {type(optimizer).__name__}: "
                         "resume with the same `optimizer` setting, or start a new run.")
    if model is not None:
        model.load_state_dict(checkpoint["model"])
    if optimizer is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
    if scheduler is not None and checkpoint["scheduler"] is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
    if restore_rng:
        set_rng_state(checkpoint["rng"], generator)
    return checkpoint


def read_checkpoint(path):
    """The checkpoint dict in `path`; ValueError if it is not one of ours, lacks an entry or
    fails its checksum (one written before checksums is read without)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # not a torch file, a damaged one, or one holding Python objects
        raise ValueError(f"{os.fspath(path)!r} is not a nin_course checkpoint, or a damaged one: "
                         f"torch.load could not read it ({type(err).__name__}: {err}). Choose "
                         "another checkpoint_path, or move that file away (delete it if it was "
                         "a checkpoint: the run then starts afresh).") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a nin_course checkpoint (no "
                         f"format={FORMAT!r} entry). Choose another checkpoint_path, or move "
                         "that file away.")
    _check_whole(checkpoint, path)
    return checkpoint


def _check_whole(checkpoint, path):
    """Raise ValueError, naming `path`, if `checkpoint` lacks an entry or fails its SHA-256."""
    missing = [key for key in KEYS if key not in checkpoint]
    unexpected = sorted(set(checkpoint) - {"format", "sha256", *KEYS}, key=str)
    if missing or unexpected or not isinstance(checkpoint["model"], dict):
        what = (f"lacks {', '.join(missing)}" if missing else
                f"holds entries it does not write ({', '.join(map(repr, unexpected))})"
                if unexpected else "holds no model state_dict")
        raise ValueError(f"{os.fspath(path)!r} has the nin_course checkpoint tag but {what}: it "
                         "was not written by save_checkpoint, or was changed since. Delete it "
                         "(the run then starts afresh), or resume from another checkpoint_path.")
    if "sha256" in checkpoint and digest(checkpoint) != checkpoint["sha256"]:
        raise ValueError(f"{os.fspath(path)!r} is damaged: its contents do not match the SHA-256 "
                         "stored when it was saved (a disk or copy error changed it). Delete it "
                         "(the run then starts afresh), or resume from another checkpoint_path "
                         "(a copy of it made earlier).")


def history_of(checkpoint):
    """The History in `checkpoint`; NaN rows for its epochs when it was saved without one."""
    if checkpoint["history"] is None:
        return History.unrecorded(checkpoint["epoch"])
    return History.from_dict(checkpoint["history"])


def _check_fits(model, state_dict, path):
    """Raise ValueError unless `state_dict` has exactly the keys and shapes of `model`'s."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state_dict.items()}
    if expected == found:
        return
    missing, unexpected = sorted(expected.keys() - found), sorted(found.keys() - expected)
    resized = sorted(k for k in expected.keys() & found if expected[k] != found[k])
    details = "; ".join(f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                        for what, keys in (("missing", missing), ("unexpected", unexpected),
                                           ("different shape", resized)) if keys)
    raise ValueError(f"the checkpoint {os.fspath(path)!r} was saved from a different model "
                     f"({details}). Resume with the model that wrote it, or choose another "
                     "checkpoint_path.")


def rng_state(generator=None):
    """The states of Python's, NumPy's, torch's (CPU and CUDA) and `generator`'s generators."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        # as a tensor: weights_only loading accepts tensors, not NumPy arrays
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": generator.get_state() if isinstance(generator, torch.Generator) else None,
    }


@contextlib.contextmanager
def rng_preserved(generator=None):
    """Run a block, then put every generator (and `generator`) back as it was before it."""
    state = rng_state(generator)
    try:
        yield
    finally:
        set_rng_state(state, generator)


def set_rng_state(state, generator=None):
    """Restore the generators (and `generator`, if its state was saved) from `rng_state()`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() \
            and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if isinstance(generator, torch.Generator) and state.get("loader") is not None:
        generator.set_state(state["loader"])
