"""Run one untrusted command (a submission's grading) in a sandbox, with time and memory limits.

The sandbox is bubblewrap (`bwrap`, Debian package `bubblewrap`; no daemon, no root needed where
unprivileged user namespaces are allowed): the whole file system read-only, a fresh /tmp, a
private /proc and /dev, one writable scratch folder and one read-only grader folder mounted
under /tmp, no network, its own user, PID, IPC and UTS namespaces, and no capabilities. Folders
that a submission must not even read (the other submissions, private autograders, the CSV) are
covered by empty ones.

The limits hold for the whole process tree: every `POLL_SECONDS` the resident memory of the
sandbox's processes is summed, and on a timeout or an excess the sandbox's first process is
killed, which takes its PID namespace with it (the kernel kills every process in a namespace
whose init dies; `--die-with-parent` makes that init die with it). Without bubblewrap the
command runs as a plain child (no isolation), orphans are adopted through PR_SET_CHILD_SUBREAPER,
and the same limits and clean-up apply to everything that descends from it.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.2
SCRATCH, GRADER = "/tmp/work", "/tmp/grader"  # where the two folders appear inside the sandbox
PR_SET_CHILD_SUBREAPER = 36
_running = set()  # pids of the commands being run now (several with --jobs)
FRESH = ("/tmp", "/dev/shm", "/run")  # replaced by empty folders inside the sandbox


def _needed_under_fresh():
    """The repository and the Python environment, where they lie under a folder the sandbox
    replaces (a clone in /tmp, say): they are mounted again, read-only, at the same path."""
    needed = {Path(__file__).resolve().parents[1], Path(sys.prefix).resolve(),
              Path(sys.base_prefix).resolve()}
    return sorted(str(p) for p in needed
                  if any(p.is_relative_to(fresh) for fresh in FRESH))


@dataclass
class Outcome:
    """How a sandboxed command ended: `status` is 'exited', 'timed out' or 'memory'."""
    status: str
    returncode: int
    seconds: float
    peak_bytes: int
    stderr: str


def bwrap_path():
    """The bubblewrap executable if it is installed and works here, else None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    probe = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                            "--tmpfs", "/tmp", "true"], capture_output=True, timeout=60)
    return path if probe.returncode == 0 else None


def bwrap_command(bwrap, command, scratch, grader, hidden=(), env=None):
    """The bwrap command line that runs `command` with `scratch` writable at SCRATCH and
    `grader` read-only at GRADER; each folder in `hidden` is replaced by an empty one and each
    file by an empty file."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
            "--tmpfs", "/dev/shm", "--tmpfs", "/run"]
    for path in _needed_under_fresh():
        args += ["--ro-bind", path, path]
    for path in hidden:
        path = Path(path)
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    args += ["--bind", str(scratch), SCRATCH, "--ro-bind", str(grader), GRADER,
             "--chdir", SCRATCH, "--uid", "1000", "--gid", "1000", "--clearenv"]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    return [*args, *command]


def become_subreaper():
    """Adopt the orphans of our children (Linux), so that a daemonised process stays in the tree."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def children_map():
    """{parent pid: [child pids]} of every process visible in /proc."""
    tree = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid):
    """pid and every process below it."""
    tree, found, todo = children_map(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += tree.get(current, [])
    return found


def adopted():
    """Our children that we did not start: orphans adopted as a subreaper, and what is below them."""
    children = children_map().get(os.getpid(), [])
    return [d for c in children if c not in _running and not zombie(c) for d in descendants(c)]


def resident_bytes(pids):
    """The summed resident memory of `pids` (0 for those that are gone)."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total


def kill_tree(pid):
    """SIGKILL everything below pid (pid itself too), until nothing is left; reaps the orphans
    that we adopted (not pid: its Popen waits for it)."""
    killed = set()
    for _ in range(100):
        pids = [p for p in descendants(pid) if p != os.getpid()]
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not zombie(p)]
        if not alive:
            break
        for p in reversed(alive):
            try:
                os.kill(p, signal.SIGKILL)
                killed.add(p)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    for p in killed - {pid}:
        try:
            os.waitpid(p, os.WNOHANG)
        except ChildProcessError:  # not our child: its own parent reaps it
            pass


def start_time(pid):
    """When pid started (clock ticks since boot), to tell it from a later process with its pid."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def run_limited(command, timeout, memory_bytes, cwd=None, env=None, adopt=False):
    """Run `command`, killing its whole tree after `timeout` s or above `memory_bytes` resident.

    adopt: also count and kill the orphans that we adopt (without bwrap; one command at a time).
    """
    import tempfile
    become_subreaper()
    start, peak, status = time.monotonic(), 0, "exited"
    with open(os.devnull, "rb") as stdin, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=stderr, start_new_session=True)
        _running.add(proc.pid)
        seen = {}  # pid: start time, of every process seen in the tree
        while proc.poll() is None:
            tree = [*descendants(proc.pid), *(adopted() if adopt else ())]
            seen.update((p, start_time(p)) for p in tree if p not in seen)
            peak = max(peak, resident_bytes(tree))
            if peak > memory_bytes:
                status = "memory"
            elif time.monotonic() - start > timeout:
                status = "timed out"
            if status != "exited":
                break
            time.sleep(POLL_SECONDS)
        kill_tree(proc.pid)  # on a limit: all of it; else whatever it left behind
        proc.wait()
        for p, started in seen.items():  # without bwrap: orphans that we adopted
            if p != proc.pid and started is not None and start_time(p) == started:
                kill_tree(p)
        for p in adopted() if adopt else ():
            kill_tree(p)
        _running.discard(proc.pid)
        stderr.seek(max(0, stderr.seek(0, 2) - 20000))
        text = stderr.read().decode("utf-8", "replace")
    return Outcome(status, proc.returncode, time.monotonic() - start, peak, text)
