"""simplemma's English and Spanish dictionaries, as tries kept in a cache folder.

simplemma ships its dictionaries compressed. Read as streams (its `low_memory` backend) they
take more than half a second to open at every start, which every `monitor` command with Latin
rule words paid before doing anything. Built once into MARISA tries (the format of simplemma's
`TrieDictionaryFactory`) and saved, they open in milliseconds and take less memory than the
streams.

Building a trie reads a whole dictionary into memory (a few hundred MB for a moment), so it runs
in a child process (`python -m monitor.dictionaries [FOLDER]`): the daemon never holds that
memory. Builders take a lock on the folder, so parallel first runs (tests, replicas) build once,
and each file is renamed into place, so nobody reads half a trie. A trie that does not load (a
damaged file) is not rebuilt in the daemon: that language reads its stream, and a warning says
to delete the file. Where no trie can be built (no writable cache folder, a build that failed
in the last day), the streams are read, as before, and a warning says so once.

The folder is `MONITOR_CACHE_DIR`, else the user's cache folder (`~/.cache/monitor` on Linux),
with one subfolder per simplemma and marisa-trie version: a new version builds its own tries.
This module is a leaf of its own (not in monitor.matching) so that `python -m` runs it without
importing the package that uses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplemma.strategies.dictionaries.dictionary_factory import DictionaryFactory

LANGS = ("en", "es")
BUILD_TIMEOUT = 60.0  # seconds; a build takes 2-4 on one core
RETRY_AFTER = 24 * 3600.0  # seconds: after a failed build, the streams until then
FAILED = ".failed"  # the marker of a failed build: when it failed, and why
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """monitor's cache folder: `MONITOR_CACHE_DIR`, else the user's cache folder."""
    root = os.environ.get("MONITOR_CACHE_DIR")
    if not root:
        # platformdirs knows each system's cache folder; imported only when none is set
        from platformdirs import user_cache_dir  # noqa: PLC0415

        root = user_cache_dir("monitor")
    return Path(root)


def cache_folder() -> Path | None:
    """Where the tries of this simplemma and marisa-trie are kept; None without marisa-trie."""
    try:
        versions = f"simplemma-{version('simplemma')}-marisa-{version('marisa-trie')}"
    except PackageNotFoundError:
        return None
    return cache_root() / "dictionaries" / versions


@lru_cache(maxsize=1)
def dictionary_factory() -> DictionaryFactory:
    """The tries where they are built or can be; simplemma's streams otherwise."""
    folder = cache_folder()
    if folder is not None and (complete(folder) or _build_in_child(folder)):
        try:
            return _Tries(folder)
        except ImportError as error:
            log.warning("word dictionaries: read as streams (%s)", error)
    return _streams()


def complete(folder: Path) -> bool:
    return all((folder / f"{lang}.dic").is_file() for lang in LANGS)


def _streams() -> DictionaryFactory:
    # simplemma's own low-memory backend, imported only where no trie is used
    from simplemma.strategies.dictionaries import LOW_MEMORY_DICTIONARY_FACTORY  # noqa: PLC0415

    return LOW_MEMORY_DICTIONARY_FACTORY


class _Tries:
    """simplemma's DictionaryFactory over the saved tries: a language whose trie does not load
    reads its stream (the file is left for the user to delete, never rebuilt here)."""

    def __init__(self, folder: Path) -> None:
        # marisa-trie and simplemma's view of a trie; ImportError here means the streams
        from marisa_trie import BytesTrie  # noqa: PLC0415
        from simplemma.strategies.dictionaries.trie_dictionary_factory import (  # noqa: PLC0415
            TrieWrapDict,
        )

        self._folder = folder
        self._trie, self._view = BytesTrie, TrieWrapDict
        self._loaded: dict[str, Mapping[str, str]] = {}

    def get_dictionary(self, lang: str) -> Mapping[str, str]:
        found = self._loaded.get(lang)
        if found is None:
            found = self._loaded[lang] = self._load(lang)
        return found

    def _load(self, lang: str) -> Mapping[str, str]:
        path = self._folder / f"{lang}.dic"
        if lang in LANGS:
            try:
                loaded: Mapping[str, str] = self._view(self._trie().load(str(path)))
            except Exception as error:
                log.warning(
                    "word dictionaries: %s does not load (%s); reading the %s stream instead. "
                    "Delete the file to have it built again.",
                    path,
                    error,
                    lang,
                )
            else:
                return loaded
        return _streams().get_dictionary(lang)


def _build_in_child(folder: Path) -> bool:
    """Build the tries in a child process; whether they are there afterwards."""
    reason = _cannot_build(folder)
    if reason:
        log.warning(
            "word dictionaries: read as streams, about 0.6 s more at every start (%s; see "
            "docs/operations.md, Cache folder)",
            reason,
        )
        return False
    log.info("word dictionaries: building them once into %s (a few seconds)", folder)
    # -P: the working folder is not searched first, so a `monitor` folder there (a checkout, a
    # config folder named so) cannot stand in for the package
    command = [sys.executable, "-P", "-m", "monitor.dictionaries", str(folder)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return _failed(folder, str(error))
    if done.returncode != 0:  # a negative code is a signal: the OOM killer says nothing
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return _failed(folder, f"exit code {done.returncode}: {last}")
    return complete(folder)


def _cannot_build(folder: Path) -> str:
    """Why no build is tried now; empty when one is."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return "no Python interpreter to build them with"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return (
            f"cannot make {folder}: {error.strerror or error}; set MONITOR_CACHE_DIR to a "
            "writable folder"
        )
    if not os.access(folder, os.W_OK):
        return f"{folder} is not writable: set MONITOR_CACHE_DIR to a folder that is"
    marker = folder / FAILED
    with contextlib.suppress(OSError):
        if time.time() - marker.stat().st_mtime < RETRY_AFTER:
            why = marker.read_text(encoding="utf-8").strip()
            return f"the last build failed ({why}); delete {marker} to try again now"
    return ""


def _failed(folder: Path, why: str) -> bool:
    log.warning("word dictionaries: read as streams (could not build them in %s: %s)", folder, why)
    with contextlib.suppress(OSError):
        (folder / FAILED).write_text(why + "\n", encoding="utf-8")
    return False


def build(folder: Path) -> None:
    """Build and save each language's trie; each appears whole or not at all."""
    if complete(folder):
        return
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        if complete(folder):  # another builder finished while we waited
            return
        _remove_leftovers(folder)
        # the factory saves into the folder it is given, in place: it builds in a private one
        from simplemma.strategies.dictionaries.trie_dictionary_factory import (  # noqa: PLC0415
            TrieDictionaryFactory,
        )

        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as private:
            builder = TrieDictionaryFactory(disk_cache_dir=private)
            for lang in LANGS:
                if not (folder / f"{lang}.dic").is_file():
                    builder.get_dictionary(lang)
                    (Path(private) / f"{lang}.dic").replace(folder / f"{lang}.dic")
        (folder / FAILED).unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(folder: Path) -> None:
    """Build folders of builders that were killed (under the lock, none is running)."""
    for leftover in folder.glob(".build-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def main(argv: list[str]) -> int:
    """`python -m monitor.dictionaries [FOLDER]`: build the tries (into the cache folder when
    none is given), e.g. while building a container image."""
    folder = Path(argv[0]) if argv else cache_folder()
    if folder is None:
        print("marisa-trie is not installed: the dictionaries are read as streams")
        return 1
    build(folder)
    print(f"word dictionaries in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
