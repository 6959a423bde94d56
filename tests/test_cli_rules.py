"""The rule editor's commands through the real CLI: examples run by `check`, scoped term sets
and `monitor terms`, every problem of a config at once, and draft rules (`--rules`) that the
daemon does not see."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from monitor.config.settings import load_config
from monitor.runtime.reload import ConfigWatcher
from tests.conftest import REPO, run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.servers import LocalServer

VOCABULARY = """\
version: 1
shared: true
terms:
  russia: [Russia, Moscow, Москва]
  cuba: [Cuba, Havana, Гавана]
  talks: [talk, visit, прилететь]
"""
CONTACTS = """\
version: 1
rules:
  - id: contacts
    title: Contacts
    match:
      all:
        - near: [$russia, $cuba]
        - $talks
    examples:
      match:
        - Moscow and Havana talk
        - Колокольцев прилетел в Гавану из Москвы
      no_match:
        - Chicago Cubs visit Moscow, Idaho
"""


def _config(tmp_path: Path, rules: dict[str, str], monitor: str = "rules: rules/\n") -> Path:
    (tmp_path / "monitor.yaml").write_text(monitor, encoding="utf-8")
    for name, text in rules.items():
        path = tmp_path / "rules" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def check(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("check", "--config", str(config), *args, cwd=config)
    return result.returncode, result.stdout, result.stderr


# -- examples ---------------------------------------------------------------------------------


def test_check_runs_the_examples_and_passes_when_they_hold(tmp_path: Path) -> None:
    config = _config(tmp_path, {"vocabulary.yaml": VOCABULARY, "contacts.yaml": CONTACTS})
    code, out, err = check(config)
    assert code == 0, err
    assert out.endswith("valid — 0 feeds, 1 rule in 2 files, 3 examples, 0 webhooks\n")


def test_a_failing_example_is_explained_where_it_is_written(tmp_path: Path) -> None:
    vocabulary = VOCABULARY.replace("[talk, visit, прилететь]", "[talk, visit]")
    broken = CONTACTS.replace("Chicago Cubs visit Moscow, Idaho", "Russia and Cuba talk")
    config = _config(tmp_path, {"vocabulary.yaml": vocabulary, "contacts.yaml": broken})
    code, out, err = check(config)
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == (
        "rules/contacts.yaml:12:11: rule contacts: example "
        '"Колокольцев прилетел в Гавану из Москвы" should match but did not'
    )
    assert lines[1] == "    rule contacts (Contacts): no match"
    assert lines[2].startswith('      holds  all[0] near [$russia, $cuba] within 8: "Гавану"')
    assert lines[3] == "      fails  all[1] $talks: no term of the set (2 terms) occurs"
    # the edit that broke it may be in the shared file: said there, naming the set
    assert (
        "rules/vocabulary.yaml:6:3: warning: shared term set `$talks` decides the failing "
        "example of rule contacts at rules/contacts.yaml:12:11: an edit of this set changes "
        "that rule too"
    ) in lines
    unexpected = next(i for i, line in enumerate(lines) if "should not match" in line)
    assert lines[unexpected] == (
        'rules/contacts.yaml:14:11: rule contacts: example "Russia and Cuba talk" should not '
        "match but did"
    )
    assert lines[unexpected + 1].startswith("    rule contacts (Contacts), severity medium")
    assert lines[-1] == (
        "2 problems found: 2 failing examples (0 feeds, 1 rule in 2 files, 3 examples, 0 webhooks)"
    )
    assert "valid" not in out


def test_the_daemon_refuses_a_failing_example_and_match_still_explains_it(
    tmp_path: Path,
) -> None:
    vocabulary = VOCABULARY.replace("[talk, visit, прилететь]", "[talk, visit]")
    config = _config(tmp_path, {"vocabulary.yaml": vocabulary, "contacts.yaml": CONTACTS})
    once = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert once.returncode == 2
    assert (
        'rules/contacts.yaml:12:11: rule contacts: example "Колокольцев прилетел в Гавану из '
        'Москвы" should match but did not (`monitor check` says why)'
    ) in once.stderr.splitlines()
    # read-only commands do not run examples: the editor can look into the failing one
    item = json.dumps({"id": "x", "title": "Колокольцев прилетел в Гавану из Москвы"})
    looked = run_cli(
        "match", "--config", str(config), "--explain", cwd=config, input_text=item + "\n"
    )
    assert looked.returncode == 0, looked.stderr
    assert "fails  all[1] $talks" in looked.stdout


async def test_a_reload_that_breaks_an_example_is_rejected(tmp_path: Path) -> None:
    config = _config(tmp_path, {"vocabulary.yaml": VOCABULARY, "contacts.yaml": CONTACTS})
    applied: list[object] = []

    async def apply(loaded: object) -> None:
        applied.append(loaded)

    watcher = ConfigWatcher(load_config(config), apply)
    vocabulary = config / "rules" / "vocabulary.yaml"
    vocabulary.write_text(VOCABULARY.replace(", прилететь]", "]"), encoding="utf-8")
    assert not await watcher.reload()
    assert applied == []
    vocabulary.write_text(VOCABULARY.replace("прилететь]", "прилететь, meet]"), "utf-8")
    assert await watcher.reload()
    assert len(applied) == 1


def test_the_shipped_rules_carry_examples_that_pass(tmp_path: Path) -> None:
    code, out, err = check(REPO / "config")
    assert code == 0, err
    summary = out.splitlines()[-1]
    examples = int(summary.split(" examples")[0].rsplit(" ", 1)[1])
    assert examples >= 5 * 4, summary  # every shipped rule has several, each way


# -- scoped term sets and `monitor terms` -----------------------------------------------------


def test_a_rule_using_another_files_own_set_names_both_places(tmp_path: Path) -> None:
    private = VOCABULARY.replace("shared: true\n", "")
    config = _config(tmp_path, {"vocabulary.yaml": private, "contacts.yaml": CONTACTS})
    code, _out, err = check(config)
    assert code == 2
    assert (
        "rules/contacts.yaml:7:18: term set `$russia` is another file's own: share it (move it "
        "to a file with `shared: true`) or define it in this file; it is defined at "
        "rules/vocabulary.yaml:3:3"
    ) in err.splitlines()
    assert err.splitlines()[-1] == f"3 problems found in {config}"  # $russia, $cuba, $talks


def test_terms_lists_every_set_where_it_is_defined_and_who_uses_it(tmp_path: Path) -> None:
    own = CONTACTS.replace("version: 1\n", "version: 1\nterms:\n  unused: [nothing]\n")
    config = _config(tmp_path, {"vocabulary.yaml": VOCABULARY, "contacts.yaml": own})
    result = run_cli("terms", "--config", str(config), cwd=config)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["SET", "DEFINED", "AT", "SCOPE", "TERMS", "USED", "BY", "RULES"]
    assert rows[1:] == [
        ["$unused", "rules/contacts.yaml:3:3", "own", "1", "no", "rule"],
        ["$russia", "rules/vocabulary.yaml:4:3", "shared", "3", "contacts"],
        ["$cuba", "rules/vocabulary.yaml:5:3", "shared", "3", "contacts"],
        ["$talks", "rules/vocabulary.yaml:6:3", "shared", "3", "contacts"],
    ]
    lines = run_cli("terms", "--config", str(config), "--json", cwd=config).stdout.splitlines()
    assert json.loads(lines[1]) == {
        "set": "russia", "defined_at": "rules/vocabulary.yaml:4:3", "shared": True,
        "terms": 3, "rules": ["contacts"], "in_sets": [],
    }  # fmt: skip


def test_terms_on_the_shipped_config_shows_the_shared_vocabulary(tmp_path: Path) -> None:
    result = run_cli("terms", "--config", str(REPO / "config"), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sets = {(s["set"], s["defined_at"].split(":")[0]): s for s in map(json.loads,
            result.stdout.splitlines())}  # fmt: skip
    contact = sets[("contact", "rules/state-acts.yaml")]
    assert contact["shared"]
    assert {"russia-cuba-contacts", "russia-venezuela-contacts"} <= set(contact["rules"])
    assert not sets[("havana_syndrome", "rules/russia-cuba-contacts.yaml")]["shared"]


# -- every problem at once ----------------------------------------------------------------------

MANY_MISTAKES = """\
version: 1
rules:
  - id: Contacts_Watch
    title: Bad id
    match: Cuba
  - id: contacts
    title: A second rule with the same id
    match: Cu*ba
  - id: borrower
    title: Uses a set nobody shares
    match: $private
"""
PRIVATE = """\
version: 1
terms:
  private: [Havana]
rules:
  - id: owner
    title: Owner
    match: $private
"""


def test_check_reports_schema_and_semantic_problems_in_one_run(tmp_path: Path) -> None:
    monitor = (
        "rules: rules/\ndefaults:\n  interval: soon\nwebhooks:\n  - name: h\n"
        "    url: https://h.example/\n    secret: whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ=\n"
        "    rules: [contacts, no-such-rule]\n"
    )
    files = {"vocabulary.yaml": VOCABULARY, "contacts.yaml": CONTACTS,
             "mistakes.yaml": MANY_MISTAKES, "private.yaml": PRIVATE}  # fmt: skip
    config = _config(tmp_path, files, monitor)
    code, _out, err = check(config)
    assert code == 2
    lines = err.splitlines()
    expected = [
        "monitor.yaml:3:13: defaults.interval: invalid duration 'soon'",
        "monitor.yaml:8:23: webhooks.0.rules: unknown rule id 'no-such-rule'",
        "rules/mistakes.yaml:3:9: rules.0.id: 'Contacts_Watch' must be kebab-case (lowercase "
        "letters, digits and hyphens, e.g. russia-cuba-visits)",
        "rules/mistakes.yaml:6:9: rule id `contacts` is already used, at rules/contacts.yaml:3:5",
        "rules/mistakes.yaml:8:12: `*` may only end a word: `Cu*ba`",
        "rules/mistakes.yaml:11:12: term set `$private` is another file's own",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), (start, lines)
    assert lines[-1] == f"6 problems found in {config}"
    # one run: nothing above waited for another problem to be fixed


def test_yaml_syntax_errors_are_said_in_words_with_the_line_and_a_caret(tmp_path: Path) -> None:
    broken = "version: 1\nterms:\n  cuba:\n    - Cuba\n   - Havana\nrules: []\n"
    config = _config(tmp_path, {"vocabulary.yaml": VOCABULARY, "broken.yaml": broken})
    code, _out, err = check(config)
    assert code == 2
    assert err.splitlines()[:3] == [
        "rules/broken.yaml:5:4: invalid YAML: this line is not indented like the lines around "
        "it: the items of one list or mapping start in the same column",
        "    5 |    - Havana",
        "      |    ^",
    ]
    assert "expected <block end>" not in err
    assert err.splitlines()[-1] == f"1 problem found in {config}"


# -- draft rules ------------------------------------------------------------------------------


def test_draft_rules_are_checked_and_matched_before_the_daemon_sees_them(tmp_path: Path) -> None:
    config = _config(tmp_path, {"vocabulary.yaml": VOCABULARY, "contacts.yaml": CONTACTS})
    drafts = config / "rules" / "drafts"
    drafts.mkdir()
    draft = VOCABULARY.replace("[talk, visit, прилететь]", "[talk, visit, прилететь, call]")
    (drafts / "vocabulary.yaml").write_text(draft, encoding="utf-8")
    # the daemon reads rules/*.yaml only: a broken draft beside it changes nothing
    (drafts / "broken.yaml").write_text("rules: [\n", encoding="utf-8")
    assert [p.name for p in load_config(config).rule_files] == ["contacts.yaml", "vocabulary.yaml"]
    watcher = ConfigWatcher(load_config(config), _ignore)
    assert not watcher.relevant(None, str(drafts / "vocabulary.yaml"))  # type: ignore[arg-type]

    (drafts / "broken.yaml").unlink()
    code, out, _err = check(config)
    assert out.splitlines()[-1] == (
        f"note: 1 draft in rules/drafts/, not in force (check them with `monitor check --rules "
        f"{drafts}`)"
    )
    code, out, err = check(config, "--rules", str(drafts))
    assert code == 0, err
    assert "(rules from" in out
    assert "note:" not in out
    item = json.dumps({"id": "c", "title": "Moscow calls Havana"}) + "\n"
    live = run_cli("match", "--config", str(config), cwd=config, input_text=item)
    drafted = run_cli(
        "match", "--config", str(config), "--rules", str(drafts), cwd=config, input_text=item
    )
    assert (live.returncode, live.stdout) == (0, "")
    assert json.loads(drafted.stdout)["rule_id"] == "contacts"

    (drafts / "vocabulary.yaml").write_text(draft.replace("shared: true\n", ""), "utf-8")
    code, _out, err = check(config, "--rules", str(drafts))
    assert code == 2
    assert "rules/drafts/vocabulary.yaml:4:3" in err  # a draft's problems say where it is


async def _ignore(_config: object) -> None:
    return None


@pytest.fixture
def filled(tmp_path: Path, server: LocalServer) -> Path:
    """A config whose store holds one feed's items and their alerts (tests/data/pipeline)."""
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "name": "Test Wire"}],
        defaults={"interval": "10m", "backfill": "all"},
    )
    done = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert done.returncode == 0, done.stderr
    return config


def test_backtest_runs_the_stored_items_against_draft_rules(filled: Path) -> None:
    drafts = filled / "rules" / "drafts"
    drafts.mkdir()
    live = (filled / "rules" / "watch.yaml").read_text(encoding="utf-8")
    tightened = live.replace("[$us, $cuba, $pressure]", "[$us, $cuba, embargo]")
    assert tightened != live
    (drafts / "watch.yaml").write_text(tightened, encoding="utf-8")
    result = run_cli(
        "backtest", "--config", str(filled), "--rules", str(drafts), "--json", cwd=filled
    )
    assert result.returncode == 0, result.stderr
    changes = [json.loads(line) for line in result.stdout.splitlines()]
    assert {(c["change"], c["rule_id"]) for c in changes} == {("gone", "us-pressure-on-cuba")}
    unchanged = run_cli("backtest", "--config", str(filled), "--json", cwd=filled)
    assert (unchanged.returncode, unchanged.stdout) == (0, "")  # the live rules, as they were
