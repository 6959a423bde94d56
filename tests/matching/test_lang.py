"""Rules limited by language (`lang:`) and feeds selected by tag (`feeds: [tag:NAME]`).

The real CLI: `monitor match --explain` on JSON Lines for the language of an item (declared, or
identified by py3langid), `monitor check` for the file and line of an unknown tag, and
`run --once` against real feed servers and a real receiver for a feed's `lang:` and `tags:`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.matching.language import ItemLanguage, item_language, primary
from monitor.models import Item
from tests.conftest import run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

RULES = """\
version: 1
terms:
  russia: [Russia, Russian, Moscow, Kolokoltsev, Rusia, ruso, Россия]
  cuba: [Cuba, Cuban, Havana, La Habana, Куба, Гавана]
rules:
  - id: any-language
    title: Russia and Cuba, any language
    match: {all: [$russia, $cuba]}
  - id: spanish-only
    title: Russia and Cuba, in Spanish
    lang: [es]
    match: {all: [$russia, $cuba]}
  - id: state-media
    title: Russia and Cuba, state media
    feeds: [tag:state-media]
    match: {all: [$russia, $cuba]}
"""
SPANISH = {
    "id": "es-1",
    "title": "Rusia y Cuba firman un acuerdo de cooperación en La Habana",
    "summary": "El ministro ruso llegó a La Habana para reunirse con sus homólogos cubanos.",
}
ENGLISH = {
    "id": "en-1",
    "title": "Russia and Cuba sign a cooperation agreement in Havana",
    "summary": "The Russian minister arrived in Havana to meet his Cuban counterparts.",
}


def config_with(tmp_path: Path, feeds: list[dict[str, object]], **kwargs: object) -> Path:
    config = write_config(tmp_path / "config", feeds=feeds, **kwargs)  # type: ignore[arg-type]
    (config / "rules" / "watch.yaml").write_text(RULES, encoding="utf-8")
    return config


TAGGED = [{"url": "https://tass.example/rss", "tags": ["state-media", "ru"]}]


def test_a_lang_rule_skips_items_in_other_languages_and_says_so(tmp_path: Path) -> None:
    config = config_with(tmp_path, TAGGED)
    declared = ENGLISH | {"id": "en-declared-es", "lang": "es-ES"}  # the feed said so: it wins
    lines = "\n".join(json.dumps(item) for item in (SPANISH, ENGLISH, declared)) + "\n"
    result = run_cli(
        "match", "--explain", "--json", "--rule", "spanish-only", "--config", str(config),
        cwd=config, input_text=lines,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    verdicts = {row["item_id"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert verdicts["es-1"]["matched"] is True
    assert verdicts["en-declared-es"]["matched"] is True
    skipped = verdicts["en-1"]
    assert skipped["matched"] is False
    (clause,) = skipped["clauses"]
    assert clause["path"] == "lang"
    assert clause["clause"] == "es"
    assert clause["reason"] == ("skipped for language: the item is in en (identified by py3langid)")
    readable = run_cli(
        "match", "--explain", "--rule", "spanish-only", "--config", str(config),
        cwd=config, input_text=json.dumps(ENGLISH | {"lang": "en-US"}) + "\n",
    )  # fmt: skip
    assert "fails  lang es: skipped for language: the item is in en (declared by the feed)" in (
        readable.stdout
    ), readable.stdout


def test_match_without_explain_applies_lang_too(tmp_path: Path) -> None:
    config = config_with(tmp_path, TAGGED)
    lines = "\n".join(json.dumps(item) for item in (SPANISH, ENGLISH)) + "\n"
    result = run_cli("match", "--config", str(config), cwd=config, input_text=lines)
    assert result.returncode == 0, result.stderr
    found = sorted(
        (row["item_id"], row["rule_id"]) for row in map(json.loads, result.stdout.split("\n")[:-1])
    )
    # no feed URL in a dry run: the tagged rule watches every item, as URL patterns do
    assert found == [
        ("en-1", "any-language"),
        ("en-1", "state-media"),
        ("es-1", "any-language"),
        ("es-1", "spanish-only"),
        ("es-1", "state-media"),
    ]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (Item(title="x", lang="ES-es"), ItemLanguage("es", "declared")),
        (Item(title="x", lang="ru_RU"), ItemLanguage("ru", "declared")),
        (
            Item(
                title="Москва и Гавана подписали соглашение о сотрудничестве",
                summary="Министр прибыл в Гавану и провёл переговоры с кубинскими коллегами.",
            ),
            ItemLanguage("ru", "identified"),
        ),
        (Item(title="  "), ItemLanguage(None, "identified")),
    ],
)
def test_item_language(item: Item, expected: ItemLanguage) -> None:
    assert item_language(item) == expected


def test_primary_subtag() -> None:
    assert [primary(t) for t in ("es-419", " EN ", "", None)] == ["es", "en", None, None]


def test_an_unknown_tag_is_a_check_error_with_file_and_line(tmp_path: Path) -> None:
    config = config_with(tmp_path, [{"url": "https://tass.example/rss", "tags": ["state-media"]}])
    rules = config / "rules" / "watch.yaml"
    rules.write_text(RULES.replace("tag:state-media", "tag:state-medai"), encoding="utf-8")
    check = run_cli("check", "--config", str(config), cwd=config)
    assert check.returncode == 2
    line = RULES.splitlines().index("    feeds: [tag:state-media]") + 1
    assert (
        f"rules/watch.yaml:{line}:13: unknown feed tag `state-medai`: no feed in monitor.yaml "
        "has it; did you mean `tag:state-media`?" in check.stdout + check.stderr
    ), check.stdout


def test_bad_lang_in_a_rule_names_its_line(tmp_path: Path) -> None:
    config = config_with(tmp_path, TAGGED)
    rules = config / "rules" / "watch.yaml"
    rules.write_text(RULES.replace("lang: [es]", "lang: [Spanish]"), encoding="utf-8")
    check = run_cli("check", "--config", str(config), cwd=config)
    assert check.returncode == 2
    line = RULES.splitlines().index("    lang: [es]") + 1
    assert f"rules/watch.yaml:{line}:" in check.stdout + check.stderr, check.stdout


def test_tags_and_a_feeds_lang_decide_which_rules_alert(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    # the same English wire served three times: tagged state media, declared Spanish, neither
    wire = feed_document("havana-wire.xml")
    for path in ("/tass.xml", "/declared-es.xml", "/plain.xml"):
        serve_feed(server, path, wire)
    serve_feed(server, "/prensa.xml", feed_document("prensa-es.xml"))  # <language>es</language>
    config = config_with(
        tmp_path,
        [
            {"url": server.url("/tass.xml"), "tags": ["state-media", "ru"]},
            {"url": server.url("/declared-es.xml"), "lang": "es"},
            {"url": server.url("/plain.xml")},
            {"url": server.url("/prensa.xml")},
        ],
        defaults={"interval": "10m", "backfill": "all"},
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    once = run_cli("run", "--once", "--config", str(config), cwd=config)
    assert once.returncode == 0, once.stderr
    fired: dict[str, set[str]] = {}
    for delivery in receiver.deliveries:
        data = delivery.body["data"]  # type: ignore[index]
        feed = data["item"]["feed"]["url"].rsplit("/", 1)[-1]
        # one alert per item and webhook: the other rules it matched are in `also`
        for rule in (data["rule"], *data.get("also", [])):
            fired.setdefault(rule["id"], set()).add(feed)
    assert fired == {
        "any-language": {"tass.xml", "declared-es.xml", "plain.xml", "prensa.xml"},
        "state-media": {"tass.xml"},
        "spanish-only": {"declared-es.xml", "prensa.xml"},
    }


def test_a_tag_is_resolved_from_the_feeds_given_and_matches_nothing_without_them() -> None:
    from monitor.matching import Matcher, RuleFile, compile_rules  # noqa: PLC0415

    data = {"rules": [{"id": "r", "title": "R", "feeds": ["tag:state-media"], "match": "Havana"}]}
    files = [(Path("rules.yaml"), RuleFile.model_validate(data))]
    tagged = compile_rules(files, feed_tags={"state-media": ["https://tass.example/rss"]})
    unknown = compile_rules(files)  # no config's feeds at hand (a draft compiled alone)
    assert isinstance(tagged, Matcher)
    assert isinstance(unknown, Matcher)
    on_tass = Item(title="Havana", feed_url="https://tass.example/rss")
    elsewhere = Item(title="Havana", feed_url="https://other.example/rss")

    assert [m.rule_id for m in tagged.match(on_tass)] == ["r"]
    assert tagged.match(elsewhere) == []
    assert unknown.match(on_tass) == []  # never "every feed"
