"""simplemma's dictionaries as tries in a cache folder (monitor.matching.dictionaries): built
once in a child process, read the same as simplemma's streams, and the streams where no trie can
be built."""

from __future__ import annotations

from pathlib import Path

import pytest
from simplemma.strategies import DictionaryLookupStrategy
from simplemma.strategies.dictionaries import LOW_MEMORY_DICTIONARY_FACTORY
from simplemma.strategies.dictionaries.trie_dictionary_factory import TrieDictionaryFactory

from monitor.matching import dictionaries

# dictionary forms of the shipped rules' Latin words, their inflections, names and non-words
WORDS = (
    *("visit", "visited", "visits", "visiting", "sanction", "sanctions", "sancionar"),
    *("sanciones", "sanción", "minister", "ministers", "ministro", "ministros", "Cuba"),
    *("cubano", "cubanos", "Cuban", "Cubans", "embargo", "met", "meet", "reunión"),
    *("reuniones", "acuerdo", "acuerdos", "firmó", "talks", "agreement", "Havana", "Habana"),
    "xqzzy",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cache") / "dictionaries"
    assert dictionaries._build_in_child(folder)  # the real child process, as at first start
    return folder


def test_the_child_builds_every_language_whole(built: Path) -> None:
    names = sorted(path.name for path in built.iterdir())
    assert names == ["en.dic", "es.dic"]  # no temporary file or build folder left behind
    assert all((built / name).stat().st_size > 100_000 for name in names)


def test_the_tries_read_as_simplemmas_own_dictionaries(built: Path) -> None:
    tries = DictionaryLookupStrategy(TrieDictionaryFactory(disk_cache_dir=str(built)))
    streams = DictionaryLookupStrategy(LOW_MEMORY_DICTIONARY_FACTORY)
    for lang in dictionaries.LANGS:
        for word in WORDS:
            assert tries.get_lemma(word, lang) == streams.get_lemma(word, lang), (word, lang)
    assert tries.get_lemma("sanciones", "es") == "sanción"


def test_a_second_build_keeps_the_tries_there(built: Path) -> None:
    before = {path.name: path.stat().st_mtime_ns for path in built.iterdir()}
    dictionaries.build(built)
    assert {path.name: path.stat().st_mtime_ns for path in built.iterdir()} == before


def test_a_folder_that_cannot_be_made_falls_back_to_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go", encoding="utf-8")
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(blocker))
    dictionaries.dictionary_factory.cache_clear()
    try:
        assert dictionaries.dictionary_factory() is LOW_MEMORY_DICTIONARY_FACTORY
    finally:
        dictionaries.dictionary_factory.cache_clear()


def test_the_cache_folder_is_per_library_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CACHE_DIR", "/somewhere")
    folder = dictionaries.cache_folder()
    assert folder is not None
    assert folder.parent == Path("/somewhere/dictionaries")
    assert folder.name.startswith("simplemma-")
    assert "-marisa-" in folder.name
