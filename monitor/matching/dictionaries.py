"""simplemma's English and Spanish dictionaries, as tries kept in a cache folder.

simplemma ships its dictionaries compressed. Read as streams (its `low_memory` backend) they
take a second to open at every start, which every `monitor` command with Latin rule words paid
before doing anything. Built once into MARISA tries (simplemma's `TrieDictionaryFactory`) and
saved, they open in milliseconds and take less memory than the streams.

Building a trie reads a whole dictionary into memory (a few hundred MB for a moment), so it runs
in a child process (`python -m monitor.matching.dictionaries FOLDER`): the daemon never holds
that memory. Concurrent first runs (tests in parallel, replicas) each build into a temporary
file and rename it into place, so nobody reads half a trie. Where no trie can be built (a
read-only home, no marisa-trie), the streams are used, as before.

The folder is `MONITOR_CACHE_DIR`, else the user's cache folder (`~/.cache/monitor`), with one
subfolder per simplemma and marisa-trie version: a new version builds its own tries.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplemma.strategies.dictionaries.dictionary_factory import DictionaryFactory

LANGS = ("en", "es")
BUILD_TIMEOUT = 300.0  # seconds; a build takes a few on one core
log = logging.getLogger(__name__)


def cache_folder() -> Path | None:
    """Where the tries of this simplemma and marisa-trie are kept; None without marisa-trie."""
    try:
        versions = f"simplemma-{version('simplemma')}-marisa-{version('marisa-trie')}"
    except PackageNotFoundError:
        return None
    root = os.environ.get("MONITOR_CACHE_DIR")
    if not root:
        from platformdirs import user_cache_dir  # noqa: PLC0415 - only when no folder is set

        root = user_cache_dir("monitor")
    return Path(root) / "dictionaries" / versions


@lru_cache(maxsize=1)
def dictionary_factory() -> DictionaryFactory:
    """The tries where they are built or can be; simplemma's streams otherwise."""
    folder = cache_folder()
    if folder is not None and (_complete(folder) or _build_in_child(folder)):
        from simplemma.strategies.dictionaries.trie_dictionary_factory import (  # noqa: PLC0415
            TrieDictionaryFactory,
        )

        return TrieDictionaryFactory(disk_cache_dir=str(folder))
    from simplemma.strategies.dictionaries import LOW_MEMORY_DICTIONARY_FACTORY  # noqa: PLC0415

    return LOW_MEMORY_DICTIONARY_FACTORY


def _complete(folder: Path) -> bool:
    return all((folder / f"{lang}.dic").is_file() for lang in LANGS)


def _build_in_child(folder: Path) -> bool:
    """Build the tries in a child process; whether they are there afterwards."""
    command = [sys.executable, "-m", "monitor.matching.dictionaries", str(folder)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as error:
        log.info("word dictionaries: read as streams (%s)", error)
        return False
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log.info("word dictionaries: read as streams (could not build %s: %s)", folder, last)
        return False
    return _complete(folder)


def build(folder: Path) -> None:
    """Build and save each language's trie; each appears whole or not at all."""
    from simplemma.strategies.dictionaries.trie_dictionary_factory import (  # noqa: PLC0415
        TrieDictionaryFactory,
    )

    folder.mkdir(parents=True, exist_ok=True)
    # the factory saves into the folder it is given, in place: it builds in a private one
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as private:
        builder = TrieDictionaryFactory(disk_cache_dir=private)
        for lang in LANGS:
            if not (folder / f"{lang}.dic").is_file():
                builder.get_dictionary(lang)
                (Path(private) / f"{lang}.dic").replace(folder / f"{lang}.dic")


def main(argv: list[str]) -> int:
    """`python -m monitor.matching.dictionaries [FOLDER]`: build the tries (into the cache
    folder when none is given), e.g. while building a container image."""
    folder = Path(argv[0]) if argv else cache_folder()
    if folder is None:
        print("marisa-trie is not installed: the dictionaries are read as streams")
        return 1
    build(folder)
    print(f"word dictionaries in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
