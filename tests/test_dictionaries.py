"""simplemma's dictionaries as tries in a cache folder (monitor.dictionaries): built once in a
child process, read the same as simplemma's streams, and the streams wherever a trie cannot be
built or read, without ever building one in the process that reads it."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from simplemma.strategies import DictionaryLookupStrategy
from simplemma.strategies.dictionaries import LOW_MEMORY_DICTIONARY_FACTORY

from monitor import dictionaries

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


@pytest.fixture
def fresh_factory() -> Iterator[None]:
    dictionaries.dictionary_factory.cache_clear()
    yield
    dictionaries.dictionary_factory.cache_clear()


def test_the_child_builds_every_language_whole(built: Path) -> None:
    names = sorted(path.name for path in built.iterdir() if not path.name.startswith("."))
    assert names == ["en.dic", "es.dic"]
    assert not list(built.glob(".build-*"))  # no build folder left behind
    assert all((built / name).stat().st_size > 100_000 for name in names)


def test_the_tries_read_as_simplemmas_own_dictionaries(built: Path) -> None:
    tries = dictionaries._Tries(built)
    streams = DictionaryLookupStrategy(LOW_MEMORY_DICTIONARY_FACTORY)
    lookup = DictionaryLookupStrategy(tries)
    for lang in dictionaries.LANGS:
        for word in WORDS:
            assert lookup.get_lemma(word, lang) == streams.get_lemma(word, lang), (word, lang)
        assert type(tries.get_dictionary(lang)).__name__ == "TrieWrapDict"  # not the stream
    assert lookup.get_lemma("sanciones", "es") == "sanción"


def test_a_second_build_leaves_the_tries_alone(built: Path) -> None:
    before = {path.name: path.stat().st_mtime_ns for path in built.glob("*.dic")}
    dictionaries.build(built)
    assert {path.name: path.stat().st_mtime_ns for path in built.glob("*.dic")} == before


def test_a_damaged_trie_is_read_as_its_stream_and_not_rebuilt(
    built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "en.dic").write_bytes((built / "en.dic").read_bytes()[:5000])
    (folder / "es.dic").write_bytes((built / "es.dic").read_bytes())
    tries = dictionaries._Tries(folder)
    with caplog.at_level(logging.WARNING, logger="monitor.dictionaries"):
        english = tries.get_dictionary("en")
    assert english.get("visited") == "visit"  # the stream answers
    assert type(english).__name__ != "TrieWrapDict"
    assert "does not load" in caplog.text
    assert (folder / "en.dic").stat().st_size == 5000  # left for the user, not rebuilt here
    assert type(tries.get_dictionary("es")).__name__ == "TrieWrapDict"


def recording_python(folder: Path) -> tuple[Path, Path]:
    """A stand-in interpreter that records that it was run, and fails."""
    calls = folder / "calls"
    python = folder / "python"
    python.write_text(f"#!/bin/sh\necho run >> {calls}\nexit 3\n", encoding="utf-8")
    python.chmod(0o755)
    return python, calls


def test_no_writable_folder_means_streams_a_warning_and_no_child(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_factory: None,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go", encoding="utf-8")
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(blocker))
    python, calls = recording_python(tmp_path)
    monkeypatch.setattr(sys, "executable", str(python))
    with caplog.at_level(logging.WARNING, logger="monitor.dictionaries"):
        assert dictionaries.dictionary_factory() is LOW_MEMORY_DICTIONARY_FACTORY
    assert not calls.exists()  # no child was started
    assert "MONITOR_CACHE_DIR" in caplog.text


def test_a_failed_build_is_not_tried_again_within_a_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "dictionaries"
    python, calls = recording_python(tmp_path)
    monkeypatch.setattr(sys, "executable", str(python))
    with caplog.at_level(logging.WARNING, logger="monitor.dictionaries"):
        assert not dictionaries._build_in_child(folder)
        assert calls.read_text(encoding="utf-8") == "run\n"
        assert "exit code 3" in (folder / dictionaries.FAILED).read_text(encoding="utf-8")
        assert not dictionaries._build_in_child(folder)
    assert calls.read_text(encoding="utf-8") == "run\n"  # not run a second time
    assert f"delete {folder / dictionaries.FAILED}" in caplog.text


def test_the_build_command_runs_without_warnings(tmp_path: Path, built: Path) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in built.glob("*.dic"):
        (folder / path.name).write_bytes(path.read_bytes())
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "monitor.dictionaries", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"word dictionaries in {folder}"


def test_the_cache_folder_is_per_library_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_CACHE_DIR", "/somewhere")
    folder = dictionaries.cache_folder()
    assert folder is not None
    assert folder.parent == Path("/somewhere/dictionaries")
    assert folder.name.startswith("simplemma-")
    assert "-marisa-" in folder.name


def test_a_monitor_folder_where_the_daemon_runs_does_not_stand_in_for_the_package(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in built.glob("*.dic"):
        (folder / path.name).write_bytes(path.read_bytes())
    decoy = tmp_path / "workdir" / "monitor"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("", encoding="utf-8")
    (decoy / "dictionaries.py").write_text("raise SystemExit(3)\n", encoding="utf-8")
    monkeypatch.chdir(decoy.parent)
    assert dictionaries._build_in_child(folder)
    assert not (folder / dictionaries.FAILED).exists()
