"""Output-directory safety for every verb that writes one (``train``, ``tune``, ``report``).

* One run at a time: :func:`hold_output` takes an exclusive lock (``fcntl.flock``) for the
  whole run; a second run into the same ``output_dir`` is refused at once, naming the
  process that holds it. The lock is a file beside the output dir (``.NAME.lock``), or
  inside it (``.labelwise.lock``) when the output dir is a mount point.
* Checked before anything is loaded (:func:`check_output_dir`): ``output_dir`` is not a
  file, not under a file, and its filesystem takes a file (not read-only, not forbidden).
* Mount points (the container ``-v host:/out`` pattern): a mount point cannot be renamed,
  so the run is built in ``.labelwise.partial`` inside it and its entries are moved in by
  :func:`swap_into` (old entries aside first, the manifest last, resumable after a crash),
  so the model never ends up outside the volume.
* ``--overwrite`` replaces only a labelwise output (:func:`check_replaceable`): a folder with
  a labelwise marker, no files labelwise did not write, and none of the run's own inputs.
* Every text file is written by :func:`write_atomic` (a temp file, fsync, rename; the temp
  file is removed on any failure), and a full disk is said in words
  (:func:`disk_full_errors`) wherever a write happens.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from labelwise.errors import LabelwiseError, OutputError

__all__ = ["LOCK_NAME", "WORK_INSIDE", "SWAP_STATE", "CHECKPOINT_COMPLETE", "is_mount_point", "lock_path",
           "work_dir", "hold_output", "check_output_dir", "check_replaceable",
           "visible_entries", "swap_into", "finish_swap", "publish_dir", "write_atomic",
           "disk_full_errors", "is_disk_full", "clear_dir", "mark_complete", "is_complete"]

LOCK_NAME = ".labelwise.lock"  # inside a mount-point output dir
WORK_INSIDE = ".labelwise.partial"  # the unfinished run inside a mount-point output dir
_OLD_INSIDE = ".labelwise.old"
SWAP_STATE = "swap.json"  # in the work dir while entries are moved into a mount point
_HIDDEN = (LOCK_NAME, WORK_INSIDE, _OLD_INSIDE)
CHECKPOINT_COMPLETE = "labelwise-complete.json"  # written last into a finished checkpoint
_MIN_FREE = 1 << 20  # below 1 MiB free after a failed write, the disk was full


# --- where the run writes -------------------------------------------------------------------
def _mount_points() -> set[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    return {line.split()[4].replace("\\040", " ") for line in lines if len(line.split()) > 4}


def is_mount_point(path: str | Path) -> bool:
    """Whether ``path`` is a mount point: ``os.path.ismount``, a device other than its
    parent's, or a mount listed in ``/proc/self/mountinfo`` (bind mounts of one device)."""
    path = Path(path)
    if not path.is_dir():
        return False
    if os.path.ismount(path):
        return True
    real = path.resolve()
    try:
        if real.stat().st_dev != real.parent.stat().st_dev:
            return True
    except OSError:
        return False
    return str(real) in _mount_points()


def lock_path(out: Path) -> Path:
    """The lock file of ``out``: beside it, or inside it when ``out`` is a mount point."""
    out = Path(out)
    return out / LOCK_NAME if is_mount_point(out) else out.parent / f".{out.name}.lock"


def work_dir(out: Path) -> Path:
    """Where an unfinished train run lives: ``.NAME.partial`` beside ``out``, or
    ``.labelwise.partial`` inside it when ``out`` is a mount point (so on the same volume)."""
    out = Path(out)
    return out / WORK_INSIDE if is_mount_point(out) else out.parent / f".{out.name}.partial"


def visible_entries(out: Path) -> list[Path]:
    """The entries of ``out`` other than labelwise's own hidden lock and work folders."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.name not in _HIDDEN)


def _first_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path, out: Path) -> None:
    """Create and remove a file in ``folder``: the one sure test that it takes files."""
    try:
        fd, name = tempfile.mkstemp(prefix=".labelwise-probe-", dir=folder)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            what = "output_dir is on a read-only filesystem"
            fix = "mount it read-write, or choose an --output-dir on a writable disk"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            what = "no permission to write the output directory"
            fix = f"give this user write access to {folder}, or choose another --output-dir"
        elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what = "no space left on device for the output directory"
            fix = "free space on that disk, or choose an --output-dir on a larger disk"
        else:
            what = f"cannot write the output directory: {exc.strerror}"
            fix = "choose another --output-dir"
        raise OutputError(what, where=f"file {out}, checked in {folder}", fix=fix,
                          code="LW361") from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(out: str | Path, *, inside: bool = False) -> Path:
    """Refuse, before anything is loaded, an ``output_dir`` that cannot be written: a
    file, under a file, on a read-only filesystem, without permission. ``inside``: the
    verb writes into ``out`` itself (``tune``), not only beside it (``train``'s rename).

    Raises:
        OutputError: What is wrong and the fix (``LW361``).
    """
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise OutputError("output_dir is a file, not a folder", where=f"file {out}",
                          fix="choose another --output-dir", code="LW361")
    existing = _first_existing(out)
    if existing != out and not existing.is_dir():
        raise OutputError(f"output_dir is under a file ({existing} is a file)",
                          where=f"file {out}", fix="choose an --output-dir whose parent "
                          "folders are folders", code="LW361")
    mount = is_mount_point(out)
    folders = []
    if out.is_dir() and (inside or mount):
        folders.append(out)
    if not mount:  # the partial dir, the lock and the final rename are beside ``out``
        folders.append(_first_existing(out.parent))
    for folder in dict.fromkeys(folders):
        _probe(folder, out)
    return out


# --- one run at a time ------------------------------------------------------------------------
def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another labelwise run"
    return (f"{info.get('command', 'labelwise')} (pid {info.get('pid')} on "
            f"{info.get('host')}, started {info.get('started')})")


@contextlib.contextmanager
def hold_output(out: str | Path, *, command: str) -> Iterator[Path]:
    """Hold ``out``'s lock for the block; refuse at once when another run holds it.

    Raises:
        OutputError: Another process holds the lock (``LW360``), naming it.
    """
    import fcntl

    out = Path(out)
    path = lock_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"output_dir is in use by {_holder(path)}",
                              where=f"file {out}, lock {path}",
                              fix="wait for that run to finish, or choose another "
                              "--output-dir", code="LW360") from None
        try:  # the holder may have removed the file between our open and our lock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "argv": sys.argv[:8]}
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still locked: a waiting opener sees another inode
        os.close(fd)


# --- what --overwrite may delete -----------------------------------------------------------------
def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def check_replaceable(out: Path, *, overwrite: bool, markers: Sequence[str],
                      known: Iterable[str], inputs: Iterable[str | Path] = (),
                      resumable: bool = False) -> None:
    """Refuse to replace ``out`` unless it is empty, or ``overwrite`` is given and ``out``
    holds a labelwise output: one of ``markers``, only entries that match ``known``
    (glob patterns), and none of the run's ``inputs`` (data files, model, config).
    ``resumable``: a folder with one of ``markers`` is the verb's own to continue.

    Raises:
        OutputError: ``LW331`` (not empty, no ``--overwrite``) or ``LW362`` (what
            ``--overwrite`` would wrongly delete).
    """
    entries = visible_entries(out)
    if not entries:
        return
    has_marker = any((out / m).exists() for m in markers)
    if resumable and has_marker and not overwrite:
        return
    if not overwrite:
        raise OutputError("output directory is not empty", where=f"file {out}",
                          fix="pass --overwrite to replace it, or choose another "
                          "--output-dir", code="LW331")
    own = [str(p) for p in inputs if p and Path(p).exists() and _inside(Path(p), out)]
    if own:
        raise OutputError(f"--overwrite would delete this run's own input {own[0]}",
                          where=f"file {out}", fix="move the input out of the output "
                          "directory, or choose another --output-dir", code="LW362")
    if not has_marker:
        raise OutputError(f"--overwrite replaces only a labelwise output, and this folder "
                          f"holds none (no {' or '.join(markers)})", where=f"file {out}",
                          fix="choose another --output-dir, or empty the folder yourself",
                          code="LW362")
    patterns = list(known)
    foreign = [p.name for p in entries
               if not any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more"
                                          if len(foreign) > 3 else "")
        raise OutputError(f"--overwrite would delete files labelwise did not write: {shown}",
                          where=f"file {out}", fix="move them out of the output directory, "
                          "or choose another --output-dir", code="LW362")


def clear_dir(out: Path) -> None:
    """Remove the entries of ``out`` (not ``out`` itself: it may be a mount point) other
    than labelwise's lock."""
    for entry in visible_entries(out):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


# --- publishing -------------------------------------------------------------------------------
def _swap_phase(work: Path, phase: str) -> None:
    write_atomic(work / SWAP_STATE, json.dumps({"phase": phase}))


def swap_into(final: Path, out: Path, *, manifest: str) -> None:
    """Move the entries of ``final`` (a finished dir inside ``out``'s work dir) into
    ``out``, for an ``out`` that cannot be renamed (a mount point): the old entries go
    aside first, then the new ones come in with ``manifest`` last, then the old ones are
    removed. Each phase is recorded, so :func:`finish_swap` completes a swap a crash
    interrupted."""
    _swap_phase(final.parent, "aside")
    finish_swap(final.parent, out, manifest=manifest)


def finish_swap(work: Path, out: Path, *, manifest: str) -> bool:
    """Complete the swap recorded in ``work``; ``False`` when none was started."""
    state = work / SWAP_STATE
    if not state.exists():
        return False
    final, old = work / "final", out / _OLD_INSIDE
    if json.loads(state.read_text())["phase"] == "aside":
        old.mkdir(exist_ok=True)
        for entry in visible_entries(out):
            os.rename(entry, old / entry.name)
        _swap_phase(work, "in")
    if final.is_dir():
        entries = sorted(final.iterdir(), key=lambda p: p.name == manifest)  # manifest last
        for entry in entries:
            os.rename(entry, out / entry.name)
    shutil.rmtree(old, ignore_errors=True)
    state.unlink()
    return True


def publish_dir(final: Path, out: Path, *, overwrite: bool, manifest: str) -> None:
    """Put the finished dir ``final`` at ``out``: one rename (the old ``out`` renamed aside
    first), or :func:`swap_into` when ``out`` is a mount point."""
    if is_mount_point(out):
        if visible_entries(out) and not overwrite:
            raise FileExistsError(out)
        swap_into(final, out, manifest=manifest)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        if not overwrite and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(out)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.rename(out, old)
        os.rename(final, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(final, out)


# --- checkpoints -------------------------------------------------------------------------------
def mark_complete(folder: Path, **info: object) -> None:
    """Write the marker that says ``folder`` (a checkpoint) was written to the end."""
    write_atomic(folder / CHECKPOINT_COMPLETE, json.dumps(info, default=str))


def is_complete(folder: Path) -> bool:
    return (folder / CHECKPOINT_COMPLETE).is_file()


# --- writing -------------------------------------------------------------------------------------
def write_atomic(path: str | Path, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temp file beside it (fsync, rename): ``path``
    holds the old or the new content, never part of it, and no temp file is left behind.

    Raises:
        OutputError: The disk is full (``LW363``).
    """
    path = Path(path)
    raw = data.encode(encoding) if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with disk_full_errors(path):
            with open(tmp, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, LabelwiseError) and exc.errno in (
                errno.EROFS, errno.EACCES, errno.EPERM):
            raise OutputError(f"cannot write the file: {exc.strerror}", where=f"file {path}",
                              fix="write to a folder this user may write to, on a "
                              "read-write filesystem", code="LW361") from None
        raise
    return path


def is_disk_full(exc: BaseException, where: str | Path) -> bool:
    """Whether ``exc`` comes from a full disk: ``ENOSPC``/``EDQUOT`` anywhere in its chain,
    or, for writers that lose the errno (PyTorch's zip writer raises ``RuntimeError:
    unexpected pos``), less than 1 MiB left on ``where``'s filesystem after the failure."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "no space left on device" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, (OSError, RuntimeError)):
        try:
            st = os.statvfs(_first_existing(Path(where)))
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < _MIN_FREE
    return False


@contextlib.contextmanager
def disk_full_errors(where: str | Path) -> Iterator[None]:
    """Turn a full disk during the block into ``OutputError`` ``LW363`` that says so."""
    try:
        yield
    except LabelwiseError:
        raise
    except Exception as exc:
        if not is_disk_full(exc, where):
            raise
        folder = Path(where) if Path(where).is_dir() else Path(where).parent
        raise OutputError("no space left on device", where=f"while writing {where}",
                          fix=f"free space on that disk (df -h {folder}) or choose an "
                          "--output-dir on a larger one, then run again",
                          code="LW363") from exc
