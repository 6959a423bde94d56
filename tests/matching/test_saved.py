"""Compiled rules saved in the cache folder (monitor.matching.saved): a start with unchanged rules
compiles nothing and opens no dictionary, and any change compiles again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.errors import ConfigError
from monitor.matching import saved
from monitor.models import Item
from tests.conftest import REPO

RULES = """\
version: 1
rules:
  - id: cuba-visit
    title: A visit to Cuba
    match:
      all:
        - any: [Куба, Cuba]
        - any: [визит, visit]
    examples:
      match: [Министр прибыл на Кубу с визитом]
"""
TAGGED = """\
version: 1
rules:
  - id: state-media
    title: Havana in state media
    feeds: [tag:state]
    match:
      any: [Havana]
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of this test's own, sharing the suite's dictionaries (built once)."""
    folder = tmp_path / "cache"
    folder.mkdir()
    shared = Path(os.environ["MONITOR_CACHE_DIR"]) / "dictionaries"
    shared.mkdir(parents=True, exist_ok=True)
    (folder / "dictionaries").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(folder))
    return folder


def _config(tmp_path: Path, rules: str = RULES, feeds: str = "") -> Path:
    directory = tmp_path / "config"
    (directory / "rules").mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(f"feeds:{feeds or ' []'}\n", encoding="utf-8")
    (directory / "rules" / "main.yaml").write_text(rules, encoding="utf-8")
    return directory


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "rules").glob("*.pickle"))


def _compile_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("compiled, though saved rules were expected")

    monkeypatch.setattr("monitor.matching.rules.compile_sources", refuse)


def _rule_ids(directory: Path, item: Item, environ: dict[str, str] | None = None) -> list[str]:
    return [match.rule_id for match in load_config(directory, environ or {}).matcher.match(item)]


def test_unchanged_rules_load_saved_and_match_as_compiled(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _config(tmp_path)
    inflected = Item(title="Визит на Кубу: министр встретился с коллегой")
    assert _rule_ids(directory, inflected) == ["cuba-visit"]
    assert len(_entries(cache)) == 1
    _compile_fails(monkeypatch)
    again = load_config(directory, {})
    assert [rule.id for rule in again.matcher.rules] == ["cuba-visit"]
    assert [m.rule_id for m in again.matcher.match(inflected)] == ["cuba-visit"]
    # a Latin inflection needs the term words' stems, which came with the saved rules
    english = Item(title="Lavrov visited Cuba twice", lang="en")
    assert [m.rule_id for m in again.matcher.match(english)] == ["cuba-visit"]
    assert again.matcher.match(Item(title="Cuban cigars sell well")) == []


def test_an_edited_rule_compiles_again(tmp_path: Path, cache: Path) -> None:
    directory = _config(tmp_path)
    item = Item(title="Lavrov visits Havana")
    assert _rule_ids(directory, item) == []
    _config(tmp_path, RULES.replace("[Куба, Cuba]", "[Куба, Cuba, Havana]"))
    assert _rule_ids(directory, item) == ["cuba-visit"]
    assert len(_entries(cache)) == 2


def _follows_its_variable(directory: Path) -> None:
    """The rule's second word is `${WORD}`: each load matches what WORD says at that load."""
    item = Item(title="Cuba hosts the minister")
    assert _rule_ids(directory, item, {"WORD": "visit"}) == []
    assert _rule_ids(directory, item, {"WORD": "hosts"}) == ["cuba-visit"]


def test_a_changed_variable_in_a_rule_file_compiles_again(tmp_path: Path, cache: Path) -> None:
    _follows_its_variable(_config(tmp_path, RULES.replace("[визит, visit]", "[визит, '${WORD}']")))
    assert len(_entries(cache)) == 2


def test_a_file_with_hex_escapes_is_compiled_every_time(tmp_path: Path, cache: Path) -> None:
    # "\x24{WORD}" is `${WORD}` once parsed: the bytes alone do not say which variables count
    _follows_its_variable(
        _config(tmp_path, RULES.replace("[визит, visit]", '[визит, "\\x24{WORD}"]'))
    )
    assert _entries(cache) == []


def test_new_feed_tags_compile_again(tmp_path: Path, cache: Path) -> None:
    tagged = "\n  - {url: 'https://granma.example/feed', tags: [state]}"
    directory = _config(tmp_path, TAGGED, tagged)
    item = Item(title="Havana today", feed_url="https://other.example/feed")
    assert _rule_ids(directory, item) == []
    _config(tmp_path, TAGGED, tagged + "\n  - {url: 'https://other.example/feed', tags: [state]}")
    assert _rule_ids(directory, item) == ["state-media"]


def test_tags_unknown_to_an_invalid_config_are_not_taken_for_no_tags(
    tmp_path: Path, cache: Path
) -> None:
    directory = _config(tmp_path, TAGGED, "\n  - {url: 'https://granma.example/feed'}")
    (directory / "monitor.yaml").write_text("feeds: []\nno_such_key: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no_such_key"):  # the rule compiles: tags unknown
        load_config(directory, {})
    (directory / "monitor.yaml").write_text("feeds: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown feed tag `state`"):
        load_config(directory, {})


def test_a_read_only_load_saves_rules_whose_examples_pass(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `monitor status`, `match`, `check` load without running the examples for the user
    directory = _config(tmp_path)
    load_config(directory, {}, secrets=False, examples=False)
    assert len(_entries(cache)) == 1
    _compile_fails(monkeypatch)
    assert [rule.id for rule in load_config(directory, {}).matcher.rules] == ["cuba-visit"]


def test_a_failing_example_is_never_saved(tmp_path: Path, cache: Path) -> None:
    directory = _config(tmp_path, RULES.replace("с визитом", "с подарком"))
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"main\.yaml"):
            load_config(directory, {})
    # a load that does not ask for the examples takes the rules, and does not save them either
    assert load_config(directory, {}, secrets=False, examples=False).matcher.rules
    assert _entries(cache) == []


def test_an_entry_others_may_write_or_a_damaged_one_is_compiled_again(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _config(tmp_path)
    load_config(directory, {})
    (entry,) = _entries(cache)
    key = entry.stem
    assert saved.load(key) is not None
    entry.chmod(0o664)
    assert saved.load(key) is None
    entry.chmod(0o600)
    entry.parent.chmod(0o777)  # a folder others may write to: whatever is in it may be theirs
    assert saved.load(key) is None
    entry.parent.chmod(0o700)
    assert saved.load(key) is not None
    entry.write_bytes(entry.read_bytes()[:100])
    assert saved.load(key) is None
    entry.write_bytes(b"something else\n")
    assert saved.load(key) is None
    # and the load compiles, saving a good entry again
    item = Item(title="Визит на Кубу")
    assert _rule_ids(directory, item) == ["cuba-visit"]
    _compile_fails(monkeypatch)
    assert _rule_ids(directory, item) == ["cuba-visit"]


def test_only_the_newest_entries_are_kept(tmp_path: Path, cache: Path) -> None:
    for n in range(saved.KEEP + 3):
        directory = _config(tmp_path / str(n), RULES.replace("cuba-visit", f"cuba-visit-{n}"))
        load_config(directory, {})
        newest = max(_entries(cache), key=lambda p: p.stat().st_mtime_ns)
        os.utime(newest, ns=(n * 10**9, n * 10**9))  # strictly ordered, whatever the clock
    assert len(_entries(cache)) == saved.KEEP


def test_an_entry_in_use_outlives_newer_ones(tmp_path: Path, cache: Path) -> None:
    directories = []
    for n in range(saved.KEEP + 1):
        directories.append(_config(tmp_path / str(n), RULES.replace("cuba-visit", f"visit-{n}")))
        load_config(directories[-1], {})
        newest = max(_entries(cache), key=lambda p: p.stat().st_mtime_ns)
        os.utime(newest, ns=(n * 10**9, n * 10**9))
        if n == 0:
            first = newest
        if n == saved.KEEP - 1:
            load_config(directories[0], {})  # the oldest, used again before the last is saved
    assert first in _entries(cache)
    assert len(_entries(cache)) == saved.KEEP


def test_a_start_with_saved_rules_opens_no_dictionary(tmp_path: Path, cache: Path) -> None:
    """The real point: `load_config` on unchanged rules imports neither pymorphy3 nor simplemma,
    nor the compiler and the rule schema (the shipped rules, in a process of its own); the
    dictionaries open when items need them, and the items match as with compiled rules. Rules
    that are not saved compile in a forked child, so the process that loads them holds none of
    that either; only where it may not fork (a thread runs) does it compile them itself."""
    probe = textwrap.dedent(
        f"""\
        import sys, threading
        from pathlib import Path
        from monitor.config.settings import load_config
        from monitor.models import Item
        go = threading.Event()
        if sys.argv[1] == "thread":
            threading.Thread(target=go.wait).start()
        config = load_config(Path({str(REPO / "config")!r}), {{}})
        go.set()
        heavy = ("pymorphy3", "simplemma", "monitor.matching.rules", "monitor.matching.schema")
        print(sorted(name for name in heavy if name in sys.modules))
        for title in ("Колокольцев прилетел в Гавану", "Lavrov meets Cuban counterpart"):
            print(title, [m.rule_id for m in config.matcher.match(Item(title=title))])
        """
    )

    def opened(folder: Path, threads: str = "none") -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, threads], capture_output=True, text=True,
            env={**os.environ, "MONITOR_CACHE_DIR": str(folder)}, cwd=REPO, check=True,
            timeout=120,
        )  # fmt: skip
        return done.stdout.strip()

    compiled = "['monitor.matching.rules', 'monitor.matching.schema', 'pymorphy3', 'simplemma']"
    here_modules, *here_matches = opened(cache, "thread").splitlines()
    assert here_modules == compiled
    assert all("russia-cuba-contacts" in line for line in here_matches)
    saved_modules, *saved_matches = opened(cache).splitlines()
    assert saved_modules == "[]"
    assert saved_matches == here_matches
    other = tmp_path / "other-cache"
    other.mkdir()
    (other / "dictionaries").symlink_to(cache / "dictionaries", target_is_directory=True)
    forked_modules, *forked_matches = opened(other).splitlines()
    assert forked_modules == "[]"  # compiled, but in the child
    assert forked_matches == here_matches
    assert _entries(other)  # and the child saved them


def test_problems_found_compiling_in_a_child_are_the_ones_found_here(tmp_path: Path) -> None:
    """A rule file with problems (not saved, so compiled at every start) reports the same
    problems, positions and all, whether it compiled in a forked child or in the process."""
    broken = RULES.replace("- any: [визит, visit]", "- any: []") + (
        "  - id: havana\n"
        "    title: Havana\n"
        "    match:\n"
        "      any: [Гавана]\n"
        "    examples:\n"
        "      match: [A visit to Moscow]\n"
    )
    directory = _config(tmp_path, broken)
    probe = textwrap.dedent(
        f"""\
        import sys, threading
        from pathlib import Path
        from monitor.config.settings import load_config
        from monitor.errors import ConfigError
        go = threading.Event()
        if sys.argv[1] == "thread":
            threading.Thread(target=go.wait).start()
        try:
            load_config(Path({str(directory)!r}), {{}})
        except ConfigError as error:
            print("\\n".join(map(str, error.problems)))
        finally:
            go.set()
        """
    )

    def problems(threads: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe, threads], capture_output=True, text=True,
            cwd=REPO, check=True, timeout=120,
        )  # fmt: skip
        return done.stdout

    in_a_child = problems("none")
    assert in_a_child.startswith("rules/main.yaml:8:16: rules.0.match.all.1.any: List should")
    assert "rules/main.yaml:16:" in in_a_child  # the failing example, found by running it
    assert in_a_child == problems("thread")


def test_the_code_digest_covers_every_module_matching_imports() -> None:
    """A change to any module monitor.matching imports makes a new key (the _OWN_MODULES list)."""
    folder = REPO / "monitor" / "matching"
    imported = {
        line.split()[1].removeprefix("monitor.")
        for source in folder.glob("*.py")
        for line in source.read_text(encoding="utf-8").splitlines()
        if line.startswith("from monitor.") and not line.startswith("from monitor.matching")
    }
    assert {f"{name}.py" for name in imported} <= set(saved._OWN_MODULES)
