"""`monitor mute` / `unmute` with the real CLI, a feed server and a signed receiver: what is
muted is recorded and listed, never sent, and can still be replayed."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import run_cli
from tests.support.pipeline import feed_document, serve_feed, write_config
from tests.support.receiver import SECRET, SignedReceiver
from tests.support.servers import LocalServer

CONTACTS, PRESSURE = "russia-cuba-contacts", "us-pressure-on-cuba"
TWO_OUTLETS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Second outlet</title><link>https://two.example.org/</link>
<description>x</description>
<item><title>Kolokoltsev holds talks in Havana with Cuban Interior Minister Álvarez Casas</title>
<link>https://two.example.org/kolokoltsev</link><guid>two-1</guid>
<description>Russia's Interior Minister Vladimir Kolokoltsev met his Cuban counterpart in Havana;
the ministries signed a plan on fighting drug trafficking.</description></item>
</channel></rss>"""


def _config(tmp_path: Path, server: LocalServer, receiver: SignedReceiver) -> Path:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    return write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/wire.xml"), "name": "Test Wire"}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )


def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli(*args, "--config", str(config), cwd=config)
    return result.returncode, result.stdout, result.stderr


def _rules(receiver: SignedReceiver) -> list[str]:
    return [d.body["data"]["rule"]["id"] for d in receiver.deliveries]  # type: ignore[index]


def test_a_muted_rule_is_recorded_not_sent_and_replay_still_sends_it(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver)
    code, out, _ = _cli(config, "mute", "rule", CONTACTS, "--for", "2h", "--reason", "drill")
    assert code == 0, out
    mute_id = re.search(r"mute (\d+):", out)
    assert mute_id, out
    assert "`monitor unmute" in out

    code, out, _ = _cli(config, "mute")
    assert code == 0
    assert f"rule {CONTACTS}" in out
    assert "drill" in out
    assert out.splitlines()[0].split() == ["ID", "MUTED", "UNTIL", "LEFT", "REASON"]

    assert _cli(config, "run", "--once")[0] == 0
    assert _rules(receiver) == [PRESSURE]  # the muted rule's alert was not sent

    code, out, _ = _cli(config, "alerts", "--state", "muted", "--json")
    assert code == 0
    assert CONTACTS in out
    assert f"mute {mute_id.group(1)}" in out
    muted = re.search(r'"alert_id": "(alrt_[0-9A-Z]+)"', out)
    assert muted, out

    assert _cli(config, "replay", muted.group(1))[0] == 0
    assert _cli(config, "run", "--once")[0] == 0
    assert sorted(_rules(receiver)) == sorted([PRESSURE, CONTACTS])


def test_unmute_ends_a_mute_and_later_alerts_are_sent(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver)
    assert _cli(config, "mute", "feed", "Test Wire")[0] == 0
    assert _cli(config, "run", "--once")[0] == 0
    assert receiver.deliveries == []

    code, out, _ = _cli(config, "unmute", "1")
    assert (code, out.strip()) == (0, "unmuted 1")
    assert _cli(config, "mute")[1].strip() == "no mutes in force"
    code, _, err = _cli(config, "unmute", "1")
    assert code == 1
    assert "no mute 1 in force" in err

    serve_feed(server, "/wire.xml", feed_document("later-item.xml"))
    assert _cli(config, "run", "--once")[0] == 0
    assert _rules(receiver) == [CONTACTS]  # the new item; the muted ones stay muted


def test_a_muted_story_silences_other_outlets_telling_it(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver)
    assert _cli(config, "run", "--once")[0] == 0
    contacts = [d for d in receiver.deliveries if d.body["data"]["rule"]["id"] == CONTACTS]  # type: ignore[index]
    assert contacts
    code, out, _ = _cli(config, "mute", "story", contacts[0].webhook_id)
    assert code == 0, out
    assert "story of" in out

    serve_feed(server, "/two.xml", TWO_OUTLETS.encode())
    two = write_config(
        config,
        feeds=[
            {"url": server.url("/wire.xml"), "name": "Test Wire"},
            {"url": server.url("/two.xml")},
        ],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
        defaults={"interval": "10m", "backfill": "all"},
    )
    before = len(receiver.deliveries)
    assert _cli(two, "run", "--once")[0] == 0
    assert len(receiver.deliveries) == before  # the same story from another outlet: muted
    code, out, _ = _cli(two, "alerts", "--state", "muted")
    assert "Kolokoltsev holds talks in Havana with Cuban Interior" in out  # the second outlet


def test_unknown_names_are_errors_that_say_what_exists(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    config = _config(tmp_path, server, receiver)
    code, _, err = _cli(config, "mute", "rule", "no-such-rule")
    assert code == 2
    assert "no rule no-such-rule" in err
    assert CONTACTS in err
    code, _, err = _cli(config, "mute", "feed", "https://nowhere.example/rss")
    assert code == 2
    assert "no feed" in err
    code, _, err = _cli(config, "mute", "story", "alrt_NOPE")
    assert code == 2
    assert "no alert alrt_NOPE" in err
    code, _, err = _cli(config, "mute", "rule")
    assert code == 2


def test_muting_the_best_rule_of_an_item_still_sends_it_for_the_others(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/both.xml", feed_document("both-rules.xml"))
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": server.url("/both.xml")}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
        defaults={"interval": "10m", "backfill": "all"},
    )
    assert _cli(config, "mute", "rule", CONTACTS)[0] == 0  # the item's best rule

    assert _cli(config, "run", "--once")[0] == 0

    assert _rules(receiver) == [PRESSURE]  # the webhook still gets the item, as the other rule
    _, out, _ = _cli(config, "alerts", "--state", "muted", "--json")
    assert CONTACTS in out


def test_a_feed_mute_never_writes_the_feeds_credentials(
    tmp_path: Path, server: LocalServer, receiver: SignedReceiver
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    url = server.url("/wire.xml").replace("http://", "http://reader:s3cr3t-pw@")
    config = write_config(
        tmp_path / "config",
        feeds=[{"url": url, "name": "Wire"}],
        webhooks=[{"name": "analysts", "url": receiver.url, "secret": SECRET}],
    )
    assert _cli(config, "mute", "feed", "Wire")[0] == 0
    assert _cli(config, "run", "--once")[0] == 0

    outputs = [_cli(config, *args) for args in (("mute",), ("alerts", "--json"), ("alerts",))]
    assert any("muted by mute 1" in out for _, out, _ in outputs)
    assert all("s3cr3t-pw" not in out + err for _, out, err in outputs)
