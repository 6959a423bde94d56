"""Compiled rules saved in the cache folder, so that a start with unchanged rules compiles nothing.

Compiling reads every term word in pymorphy3's and simplemma's dictionaries and runs the rules'
examples: most of what `load_config` costs, paid by every `monitor` command and every
`run --once` from cron, for rules that rarely change. A compiled `Matcher` is pickled under a
key that covers all it was made from:

- each rule file's path, its bytes and the values of the `${NAME}` variables it names, in file
  order (a file that writes a hex escape, which could spell a `${`, is not saved at all);
- the feeds' tags (`feeds: [tag:NAME]` compiles to their URLs) and the analyzer;
- this code: the source of monitor.matching, of the modules its objects come from and of the
  YAML reader;
- the dictionaries and libraries (their versions) and the Python version.

So an edit of any of them is a new key, and the old entry ages out (the newest KEEP entries, by
their last use, stay). A start that finds its key does not even parse the rule files. Only rules
that compiled without a problem and whose examples all passed are saved: a start that loads an
entry has nothing to report. The dictionaries are then not opened until an item needs them.
Where monitor's sources cannot be read (a zipped install), nothing is saved.

A pickle runs code when it is read, so an entry is read only from a file this user owns that no
one else may write, in a folder of the same kind (made for this user alone); anything else, or
an entry that does not load, is compiled again, as if there were none.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import stat
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from monitor.dictionaries import cache_root
from monitor.matching.matcher import Matcher

FORMAT = b"monitor-rules-1"  # the first line of every entry; a new layout is a new number
KEEP = 8  # entries kept: a few configs (and `check --rules` drafts) side by side
LEFTOVER_AGE = 3600.0  # seconds: a .tmp file older than this is no saving in progress
# what a compiled matcher's analyses depend on, besides monitor's own code
_LIBRARIES = ("pymorphy3", "pymorphy3-dicts-ru", "simplemma", "PyStemmer", "rapidfuzz")
# the modules outside monitor.matching whose objects a Matcher holds or whose code decides its
# contents (every monitor module that monitor.matching imports)
_OWN_MODULES = ("models.py", "text.py", "durations.py", "dictionaries.py")
log = logging.getLogger(__name__)


def rules_key(
    files: Sequence[tuple[Path, bytes]],
    *,
    analyzer: str | None,
    feed_tags: Mapping[str, Sequence[str]] | None,
    readers: Sequence[Path] = (),
) -> str | None:
    """The key of the rules compiled from `files`: (path, what the file is read from) in file
    order. `readers`: the source of the code that turns those bytes into rule data. None when
    that code cannot be read, so that a change to it could go unseen."""
    code = _code_digest(tuple(readers))
    if code is None:
        return None
    digest = hashlib.sha256(FORMAT)
    digest.update(code)
    # None (monitor.yaml did not validate: tags unknown) compiles otherwise than no tags at all
    tags = None if feed_tags is None else sorted(feed_tags.items())
    digest.update(repr((analyzer, tags)).encode())
    for path, material in files:
        digest.update(repr((str(path), len(material))).encode())
        digest.update(material)
    return digest.hexdigest()


def load(key: str) -> Matcher | None:
    """The matcher saved under `key`, or None when there is none this user can trust."""
    path = _folder() / f"{key}.pickle"
    try:
        if not _trusted(path.parent.stat()):  # others could put a link to a file of ours there
            return None
        with path.open("rb") as file:
            if not _trusted(os.fstat(file.fileno())) or file.readline() != FORMAT + b"\n":
                return None
            found = pickle.load(file)  # noqa: S301 - an entry only this user can have written
        with contextlib.suppress(OSError):
            os.utime(path)  # used: the last to be pruned
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged or outdated entry is compiled again
        log.debug("compiled rules: %s does not load (%s)", path, error)
        return None
    return found if isinstance(found, Matcher) else None


def save(key: str, matcher: Matcher) -> None:
    """Save `matcher` under `key`; a folder that cannot be written costs only the saving."""
    folder = _folder()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _trusted(folder.stat()):
            return
        data = pickle.dumps(matcher, protocol=pickle.HIGHEST_PROTOCOL)
        # renamed into place, so that a reader never sees half an entry (as cli/opml.py's
        # _replace writes monitor.yaml)
        handle, temporary = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(FORMAT + b"\n" + data)
            Path(temporary).replace(folder / f"{key}.pickle")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        _prune(folder)
    except Exception as error:  # saving is a saving: the rules loaded whatever happens here
        log.debug("compiled rules: not saved in %s (%s)", folder, error)


def _folder() -> Path:
    return cache_root() / "rules"


def _trusted(found: os.stat_result) -> bool:
    """Whether a file or folder is this user's and no one else may write to it."""
    return found.st_uid == os.getuid() and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _prune(folder: Path) -> None:
    """Keep the newest KEEP entries, and no leftover of a saving cut short an hour ago."""
    entries = sorted(folder.glob("*.pickle"), key=_modified, reverse=True)
    leftovers = [p for p in folder.glob("*.tmp") if time.time() - _modified(p) > LEFTOVER_AGE]
    for old in [*entries[KEEP:], *leftovers]:
        with contextlib.suppress(OSError):
            old.unlink()


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@lru_cache(maxsize=4)
def _code_digest(readers: tuple[Path, ...]) -> bytes | None:
    """What the compiled form depends on besides the rules: code, libraries, Python; None when
    a source file cannot be read."""
    digest = hashlib.sha256(sys.version.encode())
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=;".encode())
    here = Path(__file__).parent
    own = [*sorted(here.glob("*.py")), *(here.parent / name for name in _OWN_MODULES)]
    for source in [*own, *readers]:
        digest.update(source.name.encode())
        try:
            digest.update(source.read_bytes())
        except OSError:
            return None
    return digest.digest()
