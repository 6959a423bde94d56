"""`monitor match`: the contract's dry run over JSON Lines, with the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, run_cli
from tests.support.servers import LocalServer

CONFIG = str(REPO / "config")
ITEMS = [
    {
        "id": "i-1",
        "title": "Kolokoltsev holds talks in Havana with Cuban Interior Minister",
        "summary": "Russia&#8217;s interior minister met <b>Lázaro Alberto Álvarez Casas</b>.",
        "published": "2026-03-01T09:30:00Z",
        "lang": "en",
    },
    {
        "link": "https://example.org/cubs",
        "title": "Cubs beat Cardinals at Wrigley Field",
        "description": "Baseball.",
    },
    {
        "title": "США ужесточили санкции против Кубы",
        "content": "Министерство финансов США расширило ограничительный список для Гаваны.",
    },
]


def _jsonl(items: list[dict[str, str]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def test_match_writes_one_line_per_item_and_rule(tmp_path: Path) -> None:
    result = run_cli("match", "--config", CONFIG, cwd=tmp_path, input_text=_jsonl(ITEMS))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    found = {(line["item_id"], line["rule_id"]) for line in lines}
    assert ("i-1", "russia-cuba-contacts") in found
    assert not any(item_id == "https://example.org/cubs" for item_id, _ in found)
    hashed = [line for line in lines if line["rule_id"] == "us-pressure-on-cuba"]
    assert hashed
    assert len(hashed[0]["item_id"]) == 32
    for line in lines:
        assert set(line) == {"item_id", "rule_id", "score", "matches"}
        assert isinstance(line["score"], float)
        for hit in line["matches"]:
            assert {"term", "field", "text", "score"} <= set(hit)
    again = run_cli("match", "--config", CONFIG, cwd=tmp_path, input_text=_jsonl(ITEMS))
    assert again.stdout == result.stdout  # deterministic, touches no state
    assert not (tmp_path / "data").exists()


def test_match_reads_a_file_and_explains(tmp_path: Path) -> None:
    source = tmp_path / "items.jsonl"
    source.write_text(_jsonl(ITEMS[:1]), encoding="utf-8")
    result = run_cli("match", "--config", CONFIG, "--explain", str(source), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "russia-cuba-contacts" in result.stdout
    assert "Kolokoltsev" in result.stdout


def test_bad_input_lines_are_named_and_exit_2(tmp_path: Path) -> None:
    text = _jsonl(ITEMS[:1]) + "{not json\n" + json.dumps({"summary": "no title"}) + "\n"
    result = run_cli("match", "--config", CONFIG, cwd=tmp_path, input_text=text)
    assert result.returncode == 2
    assert "<stdin>:2: not JSON" in result.stderr
    assert "<stdin>:3: `title` (a non-empty string) is required" in result.stderr
    assert '"item_id": "i-1"' in result.stdout  # good lines are still answered


def test_match_says_how_a_word_matched(tmp_path: Path) -> None:
    item = {"id": "ru-1", "title": "Россия направит Кубе нефть", "lang": "ru"}
    result = run_cli("match", "--config", CONFIG, cwd=tmp_path, input_text=_jsonl([item]))
    assert result.returncode == 0, result.stderr
    hits = [hit for line in map(json.loads, result.stdout.splitlines()) for hit in line["matches"]]
    assert {"text": "Кубе", "how": "inflected", "lang": "ru"}.items() <= next(
        hit for hit in hits if hit["text"] == "Кубе"
    ).items()
    explained = run_cli(
        "match", "--config", CONFIG, "--explain", cwd=tmp_path, input_text=_jsonl([item])
    )
    assert '"Кубе" ← term "Куба" (inflected form, ru)' in explained.stdout


RULES_WITH_ADVICE = """\
version: 1
terms:
  cuba: [Куб(а|ы|е|у|ой), Havana]
rules:
  - id: cuba-people
    title: Cuba's people
    match:
      all:
        - $cuba
        - any:
            - dissident{,s}
            - {term: Havana, unless: [Little Rock]}
"""


def test_check_prints_hints_and_warnings_and_stays_valid(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "cuba.yaml").write_text(RULES_WITH_ADVICE, encoding="utf-8")
    (tmp_path / "monitor.yaml").write_text("rules: rules/\n", encoding="utf-8")
    result = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    path = "rules/cuba.yaml"  # relative to the config folder
    lines = result.stdout.splitlines()
    assert f"{path}:3:10: hint: `Куб(а|ы|е|у|ой)`: inflection matches every form of `Куба`; " \
        "write `Куба` alone" in lines  # fmt: skip
    assert any(line.startswith(f"{path}:11:15: warning: `dissident{{,s}}`") for line in lines)
    assert any(line.startswith(f"{path}:12:") and "`unless: Little Rock`" in line for line in lines)
    assert lines[-1].endswith("valid — 0 feeds, 1 rule in 1 file, 0 examples, 0 webhooks")


CALL = {"id": "call-1", "title": "Путину позвонил Диас-Канель"}


def test_explain_says_why_a_rule_did_not_match(tmp_path: Path) -> None:
    result = run_cli(
        "match", "--config", CONFIG, "--explain", "--rule", "russia-cuba-contacts",
        cwd=tmp_path, input_text=_jsonl([CALL]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "item call-1: Путину позвонил Диас-Канель"
    assert lines[1] == "rule russia-cuba-contacts (Russian–Cuban state contacts): no match"
    assert lines[2].startswith("  holds  all[0] near [$russia_side, $cuba_side] within 8: ")
    assert lines[3].startswith("  fails  all[1] $contact: no term of the set (")
    assert lines[4].lstrip().startswith('near miss "позвонил" (title) ~ term "')
    assert not any("us-pressure-on-cuba" in line for line in lines)  # --rule narrows


def test_explain_json_has_one_line_per_item_and_rule(tmp_path: Path) -> None:
    result = run_cli(
        "match", "--config", CONFIG, "--explain", "--json",
        cwd=tmp_path, input_text=_jsonl([ITEMS[0], CALL]),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    rules = sorted({line["rule_id"] for line in lines})
    assert len(rules) >= 5
    assert len(lines) == 2 * len(rules)
    by_key = {(line["item_id"], line["rule_id"]): line for line in lines}
    hit = by_key[("i-1", "russia-cuba-contacts")]
    assert hit["matched"] is True
    assert hit["matches"]
    miss = by_key[("call-1", "russia-cuba-contacts")]
    assert miss["matched"] is False
    (contact,) = [c for c in miss["clauses"] if c["path"] == "all[1]"]
    assert contact["holds"] is False
    assert contact["clause"] == "$contact"
    assert {"word", "field", "term", "score", "reason"} == set(contact["near_misses"][0])


def test_rule_narrows_the_json_output_and_unknown_rules_are_errors(tmp_path: Path) -> None:
    narrowed = run_cli(
        "match", "--config", CONFIG, "--rule", "us-pressure-on-cuba",
        cwd=tmp_path, input_text=_jsonl(ITEMS),
    )  # fmt: skip
    assert narrowed.returncode == 0, narrowed.stderr
    rule_ids = {json.loads(line)["rule_id"] for line in narrowed.stdout.splitlines()}
    assert rule_ids == {"us-pressure-on-cuba"}
    unknown = run_cli(
        "match", "--config", CONFIG, "--rule", "russia-cuba-contact",
        cwd=tmp_path, input_text=_jsonl(ITEMS),
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "unknown rule id 'russia-cuba-contact'; did you mean 'russia-cuba-contacts'?" in (
        unknown.stderr
    )


FEED = """\
<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>
<item><guid>https://wire.example/g-1</guid><link>https://wire.example/1</link>
<title>Kolokoltsev holds talks in Havana with Cuban Interior Minister</title>
<description>Russia&#8217;s interior minister met &lt;b&gt;Cuban&lt;/b&gt; officials.
</description></item>
<item><link>https://wire.example/2</link><title>Путину позвонил Диас-Канель</title></item>
<item><title>Cubs beat Cardinals at Wrigley Field</title></item>
</channel></rss>
""".encode()
G1 = "https://wire.example/g-1"


def _feed_lines(stdout: str) -> set[tuple[str, str]]:
    return {(line["item_id"], line["rule_id"]) for line in map(json.loads, stdout.splitlines())}


def test_match_reads_a_saved_feed_with_the_real_parser(tmp_path: Path) -> None:
    saved = tmp_path / "wire.xml"
    saved.write_bytes(FEED)
    result = run_cli("match", "--config", CONFIG, "--feed", str(saved), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (G1, "russia-cuba-contacts") in _feed_lines(result.stdout)
    assert not any(item != G1 for item, _ in _feed_lines(result.stdout))
    explained = run_cli(
        "match", "--config", CONFIG, "--feed", str(saved), "--explain", "--json",
        "--rule", "russia-cuba-contacts", cwd=tmp_path,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    verdicts = {line["item_id"]: line["matched"] for line in map(json.loads,
                explained.stdout.splitlines())}  # fmt: skip
    assert verdicts[G1] is True
    assert verdicts["https://wire.example/2"] is False
    assert len(verdicts) == 3


def test_match_fetches_a_feed_url_as_the_daemon_does(tmp_path: Path, server: LocalServer) -> None:
    server.static("/rss", FEED, headers={"Content-Type": "application/rss+xml"})
    server.static("/moved", b"", status=301, headers={"Location": "/rss"})
    result = run_cli("match", "--config", CONFIG, "--feed", server.url("/moved"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (G1, "russia-cuba-contacts") in _feed_lines(result.stdout)
    assert len(server.requests_to("/rss")) == 1


def test_match_feed_failures_are_named(tmp_path: Path, server: LocalServer) -> None:
    server.static("/gone", b"no", status=404)
    server.static(
        "/page", b"<html><body>hello</body></html>", headers={"Content-Type": "text/html"}
    )
    gone = run_cli("match", "--config", CONFIG, "--feed", server.url("/gone"), cwd=tmp_path)
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"monitor match: {server.url('/gone')}: ")
    assert "404" in gone.stderr
    page = run_cli("match", "--config", CONFIG, "--feed", server.url("/page"), cwd=tmp_path)
    assert page.returncode == 2
    assert "not a feed" in page.stderr
    missing = run_cli("match", "--config", CONFIG, "--feed", str(tmp_path / "no.xml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "no.xml: cannot read" in missing.stderr
    both = run_cli("match", "--config", CONFIG, "--feed", "x.xml", "items.jsonl", cwd=tmp_path)
    assert both.returncode == 2
    assert "not both" in both.stderr


def test_match_feed_is_bounded_by_the_configs_fetch_limits(
    tmp_path: Path, server: LocalServer
) -> None:
    (tmp_path / "monitor.yaml").write_text(
        f"rules: {REPO / 'config' / 'rules'}\nfetch:\n  max_size_mib: 0.001\n", encoding="utf-8"
    )
    huge = FEED.replace(b"</channel>", b"<!--" + b"x" * 4096 + b"--></channel>")
    server.static("/huge", huge, headers={"Content-Type": "application/rss+xml"})
    fetched = run_cli(
        "match", "--config", str(tmp_path), "--feed", server.url("/huge"), cwd=tmp_path
    )
    assert fetched.returncode == 1
    assert fetched.stderr.strip().endswith("body larger than 1048 bytes")
    saved = tmp_path / "huge.xml"
    saved.write_bytes(huge)
    read = run_cli("match", "--config", str(tmp_path), "--feed", str(saved), cwd=tmp_path)
    assert read.returncode == 2
    assert "larger than the 1048 bytes a feed may have" in read.stderr
