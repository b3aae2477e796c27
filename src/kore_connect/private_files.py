"""The twin's own files: its home folder, logs, databases, token and announcements, kept private.

The twin's state holds callers' numbers, bots' metadata and the API token, so its home folder is
0700 and every file the twin writes in it 0600. Nothing is written through a symbolic link: a
link in the home (a cloned repository may ship one) is refused with an error naming it, never
followed to overwrite or append to the file it names. Files are opened with O_NOFOLLOW and checked
on the descriptor (fstat), so what is checked is what is written; a database's files are checked by
name (see private_database), which is as sound inside a 0700 folder: no one else can swap a name in
it between the check and the use.

An existing home open to others is tightened, not refused: earlier versions made it 0755 (umask
022) themselves, so refusing would stop every existing user on a problem of our making, with one
possible fix; the folder is checked first to be the user's own and not a link, and the caller says
what it changed.

A file the twin *trusts* (a token file, a running `up`'s address) must be a regular file, owned by
the current user, with no group or other permission bits: a file anyone else could have written,
or a file from a checkout (0644), is not ours to believe.

Standard library only: the SQLite session store uses it, and it runs in the Lambda functions too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Literal

from kore_connect.errors import KoreConnectError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
TRUSTED = "a regular file of yours with mode 0600, not a link"  # what read_private accepts, to quote
_OTHERS = 0o077  # group and other permission bits
# SQLite's files beside a database: WAL mode's log and shared memory, the rollback journal.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class UnsafePathError(KoreConnectError):
    """A file or folder the twin keeps private is not: a link, someone else's, or not a file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def private_folder(path: Path) -> int | None:
    """Create `path` (0700) if missing and check it is a folder of the current user's, not a link.

    A folder open to others is tightened to 0700 and its former mode returned (None otherwise):
    the caller says so. Raises UnsafePathError for a link, a file, or another user's folder."""
    with contextlib.suppress(FileExistsError):  # whatever is there is checked below
        path.mkdir(mode=FOLDER_MODE, parents=True)
    descriptor = _open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        status = os.fstat(descriptor)
        _check_owner(path, status)
        former = stat.S_IMODE(status.st_mode)
        if former & _OTHERS:
            os.fchmod(descriptor, FOLDER_MODE)
            return former
        return None
    finally:
        os.close(descriptor)


def open_private(path: Path, mode: Literal["w", "a", "x"]) -> BinaryIO:
    """`path` opened for writing as open() would (w: truncated, a: appended to, x: created only),
    binary; created 0600, an existing file of ours tightened to 0600. Raises UnsafePathError for a
    link, something that is not a regular file, or another user's file, leaving it untouched."""
    flags = os.O_WRONLY | os.O_CREAT | {"w": 0, "a": os.O_APPEND, "x": os.O_EXCL}[mode]
    descriptor = _open(path, flags)
    try:
        _make_private(path, descriptor)
        if mode == "w":
            os.ftruncate(descriptor, 0)  # only now: a file that fails the checks is left as it was
        return os.fdopen(descriptor, "ab") if mode == "a" else os.fdopen(descriptor, "wb")
    except BaseException:
        os.close(descriptor)
        raise


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data` at once (a reader sees the old file or the new one, whole), 0600.
    A link or a folder in its place is refused, not replaced."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISLNK(found.st_mode):
            raise UnsafePathError(path, _LINK)
        if not stat.S_ISREG(found.st_mode):
            raise UnsafePathError(path, _NOT_A_FILE)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:  # mkstemp: 0600, O_EXCL, never through a link
            file.write(data)
        os.replace(partial, path)  # replaces a name: it never writes through one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise


def private_database(path: Path) -> None:
    """Make ready the SQLite database at `path` before SQLite opens it: the file created 0600 (SQLite
    gives its -wal and -shm files the database's own mode), none of its files a link or another's.

    Files already there are checked by name (lstat), never opened: closing a descriptor would drop
    the POSIX locks that this process's SQLite connections hold on them."""
    path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # O_EXCL: never through a link, never an existing file
        os.close(_open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_SIDE_FILES)):
        try:
            status = file.lstat()
        except FileNotFoundError:
            continue
        _check_file(file, status)
        if stat.S_IMODE(status.st_mode) != FILE_MODE:
            os.chmod(file, FILE_MODE)  # one an earlier version made 0644


def read_private(path: Path) -> bytes:
    """The content of a file the twin trusts: a regular file, the current user's, no group or other
    permission bits (0600 or stricter). Raises UnsafePathError naming the rule it breaks, and
    FileNotFoundError when it is not there."""
    # O_NONBLOCK: a FIFO in its place is refused below instead of waiting for a writer.
    descriptor = _open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        status = os.fstat(descriptor)
        _check_file(path, status)
        if status.st_mode & _OTHERS:
            mode = stat.S_IMODE(status.st_mode)
            raise UnsafePathError(path, f"others may read or write it (mode {mode:04o})")
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(descriptor)


_LINK = "a symbolic link (kore-connect follows none among its own files)"
_NOT_A_FILE = "not a regular file"


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        # O_NOFOLLOW on a link: ELOOP; with O_DIRECTORY, on a link or a file: ENOTDIR.
        if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and path.is_symlink()):
            raise UnsafePathError(path, _LINK) from None
        if exc.errno == errno.ENOTDIR and flags & os.O_DIRECTORY:
            raise UnsafePathError(path, "not a folder") from None
        if exc.errno == errno.EISDIR:
            raise UnsafePathError(path, _NOT_A_FILE) from None
        raise


def _make_private(path: Path, descriptor: int) -> None:
    status = os.fstat(descriptor)
    _check_file(path, status)
    if stat.S_IMODE(status.st_mode) != FILE_MODE:
        os.fchmod(descriptor, FILE_MODE)


def _check_file(path: Path, status: os.stat_result) -> None:
    if stat.S_ISLNK(status.st_mode):
        raise UnsafePathError(path, _LINK)
    if not stat.S_ISREG(status.st_mode):
        raise UnsafePathError(path, _NOT_A_FILE)
    _check_owner(path, status)


def _check_owner(path: Path, status: os.stat_result) -> None:
    if status.st_uid != os.geteuid():
        raise UnsafePathError(path, f"owned by another user (uid {status.st_uid})")
