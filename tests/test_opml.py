"""OPML import and export through the real CLI: `monitor feeds import` and `monitor feeds export`.

The fixtures in tests/data/opml are written in the shapes Miniflux, FreshRSS, Feedly and
NetNewsWire export (folders as nested outlines, `category` attributes, text vs title, htmlUrl
without xmlUrl, OPML 1.0 to 2.0). An import must keep the user's monitor.yaml as it was
(comments, order, quoting) and only add lines; imported feeds are then polled from a real server.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from monitor.config.opml import Candidate, normalized, read_opml, tag_of
from monitor.config.settings import load_config
from tests.conftest import run_cli
from tests.support.pipeline import DATA, feed_document, serve_feed
from tests.support.servers import LocalServer

OPML = Path(__file__).parent / "data" / "opml"
CONFIG = """\
# yaml-language-server: $schema=schema/monitor.schema.json
version: 1
rules: rules/   # the pipeline tests' rules

feeds:
  # wires first
  - url: https://tass.com/rss/v2.xml   # the English service
    name: 'TASS (English)'
    tags: [state-media]

  - url: https://www.granma.cu/feed
    interval: 30m
  # more to come
webhooks: []  # none in this test
"""


def config_dir(tmp_path: Path, text: str = CONFIG) -> Path:
    directory = tmp_path / "config"
    directory.mkdir(parents=True)
    (directory / "rules").mkdir()
    (directory / "rules" / "watch.yaml").write_text(
        (DATA / "rules" / "watch.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (directory / "monitor.yaml").write_text(
        text.replace("rules: rules/", f"storage: sqlite:///{directory}/m.db\nrules: rules/"),
        encoding="utf-8",
    )
    return directory


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "miniflux.opml",
            [
                ("https://tass.com/rss/v2.xml", "TASS", ("all",)),
                ("https://hnrss.org/frontpage", "Hacker News: Front Page", ("all",)),
                ("http://www.cubadebate.cu/feed/", "Cubadebate", ("latin-america",)),
                (
                    "https://feeds.elpais.com/mrss-s/pages/ep/site/elpais.com/section/america/portada",
                    "El País América",
                    ("latin-america",),
                ),
                (
                    "https://ria.ru/export/rss2/archive/index.xml",
                    "РИА Новости",
                    ("rossiyskie-smi",),
                ),
            ],
        ),
        (
            "freshrss.opml",
            [
                ("https://www.granma.cu/feed", "Granma", ("uncategorized",)),
                (
                    "http://TASS.com/rss/v2.xml/",
                    "TASS (same feed, written differently)",
                    ("state-media",),
                ),
                (
                    "https://www.prensa-latina.cu/feed/?lang=es&cat=all",
                    "Prensa Latina",
                    ("state-media",),
                ),
                ("feed://example.org/rss.xml", "Not HTTP", ("scraped",)),
            ],
        ),
        (
            "feedly.opml",  # one feed in two folders: one outline, both folders as tags
            [
                ("https://www.cibercuba.com/rss.xml", "CiberCuba", ("cuba", "wires")),
                ("https://www.14ymedio.com/rss/", "14ymedio", ("cuba",)),
                (
                    "https://feeds.example-wire.com/world",
                    "Reuters World",
                    ("news", "world", "wire-services", "wires"),
                ),
            ],
        ),
        (
            "netnewswire.opml",  # an empty text: the title names it
            [
                ("https://meduza.io/rss/en/all", "Meduza", ()),
                ("https://untitled.example.net/atom.xml", "Untitled feed", ()),
                ("https://havanatimes.org/feed/", "Havana Times", ("regional",)),
                ("https://www.kommersant.ru/RSS/news.xml", "Kommersant", ("regional",)),
            ],
        ),
    ],
)
def test_reader_exports_are_read(
    fixture: str, expected: list[tuple[str, str, tuple[str, ...]]]
) -> None:
    found = read_opml((OPML / fixture).read_bytes())
    assert found == [Candidate(url, name, tags) for url, name, tags in expected]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://tass.com/rss/v2.xml", "http://TASS.com/rss/v2.xml/"),
        ("https://example.org:443/feed", "https://example.org/feed#top"),
        ("http://example.org/feed?a=1", "https://example.org/feed/?a=1"),
    ],
)
def test_spellings_of_one_feed_normalize_alike(a: str, b: str) -> None:
    assert normalized(a) == normalized(b)


def test_different_feeds_stay_different() -> None:
    assert normalized("https://example.org/feed?a=1") != normalized("https://example.org/feed?a=2")
    assert normalized("https://example.org:8443/f") != normalized("https://example.org/f")


def test_tags_are_folded_to_the_tag_alphabet() -> None:
    assert [tag_of(c) for c in ("Latin America", "Mundo Ñ", "Новости", "  ", "C++ & Go")] == [
        "latin-america", "mundo-n", "novosti", "", "c-go",
    ]  # fmt: skip


def test_import_adds_feeds_after_the_last_keeping_the_file(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    before = (config / "monitor.yaml").read_text(encoding="utf-8")
    result = run_cli(
        "feeds", "import", str(OPML / "freshrss.opml"), "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    after = (config / "monitor.yaml").read_text(encoding="utf-8")
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"added 1 feeds to {config / 'monitor.yaml'}, skipped 2 duplicates, 1 invalid"
    )
    assert "  + https://www.prensa-latina.cu/feed/?lang=es&cat=all  (Prensa Latina)" in lines
    assert "  = https://www.granma.cu/feed: already there as https://www.granma.cu/feed" in lines
    assert "  = http://TASS.com/rss/v2.xml/: already there as https://tass.com/rss/v2.xml" in lines
    assert any(
        line.startswith("  ! feed://example.org/rss.xml: ") and "http" in line for line in lines
    ), lines
    # every line the user wrote is still there, as written: three lines were inserted after
    # the last entry, before the comment that follows it
    kept = before.splitlines()
    at = kept.index("  # more to come")
    inserted = [
        "  - url: https://www.prensa-latina.cu/feed/?lang=es&cat=all",
        "    name: Prensa Latina",
        "    tags: [state-media]",
    ]
    assert after.splitlines() == [*kept[:at], *inserted, *kept[at:]]
    check = run_cli("check", "--config", str(config), cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    feeds = load_config(config).settings.feeds
    assert [f.url for f in feeds][-1] == "https://www.prensa-latina.cu/feed/?lang=es&cat=all"
    assert feeds[-1].tags == ["state-media"]


def test_a_dry_run_writes_nothing_and_a_second_import_adds_nothing(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    before = (config / "monitor.yaml").read_text(encoding="utf-8")
    args = ["feeds", "import", str(OPML / "miniflux.opml"), "--config", str(config)]
    dry = run_cli(*args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would add 4 feeds to ")
    assert "(dry run: nothing written)" in dry.stdout
    assert (config / "monitor.yaml").read_text(encoding="utf-8") == before
    first = run_cli(*args, cwd=tmp_path)
    assert first.stdout.startswith("added 4 feeds"), first.stdout
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0
    assert "added 0 feeds" in again.stdout
    assert "skipped 5 duplicates, 0 invalid" in again.stdout
    assert len(load_config(config).settings.feeds) == 6


@pytest.mark.parametrize(
    "feeds",
    ["feeds: []  # nothing yet\n", ""],
)
def test_import_into_a_config_without_feeds(tmp_path: Path, feeds: str) -> None:
    config = config_dir(tmp_path, f"version: 1\nrules: rules/\n{feeds}webhooks: []\n")
    result = run_cli(
        "feeds", "import", str(OPML / "netnewswire.opml"), "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("added 4 feeds")
    loaded = load_config(config).settings
    assert [f.name for f in loaded.feeds] == [
        "Meduza",
        "Untitled feed",
        "Havana Times",
        "Kommersant",
    ]
    assert loaded.webhooks == []


def test_import_into_another_file(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    other = tmp_path / "staging.yaml"
    other.write_text("# staging list\nfeeds:\n  - url: https://meduza.io/rss/en/all\n")
    result = run_cli(
        "feeds", "import", str(OPML / "netnewswire.opml"), "--into", str(other),
        "--config", str(config), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "skipped 1 duplicates" in result.stdout
    text = other.read_text()
    assert text.startswith("# staging list\nfeeds:\n  - url: https://meduza.io/rss/en/all\n")
    assert text.count("- url:") == 4


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"<rss version='2.0'><channel/></rss>", "not an OPML document"),
        (b"", "not an OPML document"),
    ],
)
def test_a_file_that_is_not_opml_is_refused(tmp_path: Path, content: bytes, problem: str) -> None:
    config = config_dir(tmp_path)
    before = (config / "monitor.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.opml"
    bad.write_bytes(content)
    result = run_cli("feeds", "import", str(bad), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert problem in result.stderr
    assert (config / "monitor.yaml").read_text(encoding="utf-8") == before


def test_a_flow_style_feed_list_is_left_alone(tmp_path: Path) -> None:
    config = config_dir(
        tmp_path, "version: 1\nrules: rules/\nfeeds: [{url: 'https://a.example/f'}]\n"
    )
    before = (config / "monitor.yaml").read_text(encoding="utf-8")
    result = run_cli(
        "feeds", "import", str(OPML / "feedly.opml"), "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "write it as a block list" in result.stderr
    assert (config / "monitor.yaml").read_text(encoding="utf-8") == before


def test_export_writes_opml_2_that_imports_back(tmp_path: Path) -> None:
    text = CONFIG.replace(
        "  # more to come\n",
        "  - url: https://reader:hunter2@private.example/feed?apikey=k3y&lang=es\n"
        "    name: Private wire\n"
        "    tags: [wires, es]\n"
        "    lang: es\n"
        "    auth: {bearer: 'never-exported'}\n"
        "  - url: https://${FEED_HOST}/rss\n"
        "    name: From the environment\n"
        "  - url: https://off.example/rss\n"
        "    enabled: false\n",
    ).replace("    auth: {bearer: 'never-exported'}\n", "")
    text = text.replace(
        "    name: Private wire\n", "    name: Private wire\n    headers: {X-Key: s3cr3t-h}\n"
    )
    config = config_dir(tmp_path, text)
    env = {"FEED_HOST": "env.example"}
    output = tmp_path / "out.opml"
    result = run_cli(
        "feeds", "export", "--output", str(output), "--config", str(config), cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "exported 4 feeds, 1 disabled left out, 1 URLs with credentials written masked" in (
        result.stderr
    )
    document = output.read_bytes()
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n<opml version=\"2.0\">")
    root = ET.fromstring(document)
    assert root.tag == "opml"
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "monitor feeds"
    outlines = {o.get("xmlUrl"): o for o in root.iter("outline") if o.get("xmlUrl")}
    assert set(outlines) == {
        "https://tass.com/rss/v2.xml",
        "https://www.granma.cu/feed",
        "https://reader:***@private.example/feed?apikey=***&lang=es",
        "https://${FEED_HOST}/rss",
    }
    tass = outlines["https://tass.com/rss/v2.xml"]
    assert (tass.get("text"), tass.get("title"), tass.get("category")) == (
        "TASS (English)", "TASS (English)", "/state-media",
    )  # fmt: skip
    private = outlines["https://reader:***@private.example/feed?apikey=***&lang=es"]
    assert private.get("category") == "/wires,/es"
    assert private.get("language") == "es"
    for secret in ("hunter2", "k3y", "s3cr3t-h", "env.example"):
        assert secret not in document.decode(), secret
    # folders by first tag, as readers show them
    folders = [o.get("text") for o in root.find("body") or [] if o.get("xmlUrl") is None]
    assert folders == ["state-media", "wires"]
    # and back: into an empty config, the same feeds, names and tags
    fresh = config_dir(tmp_path / "fresh", "version: 1\nrules: rules/\n")
    back = run_cli("feeds", "import", str(output), "--config", str(fresh), cwd=tmp_path)
    assert back.returncode == 0, back.stderr
    imported = {f.url: (f.name, f.tags) for f in load_config(fresh, env).settings.feeds}
    assert imported["https://tass.com/rss/v2.xml"] == ("TASS (English)", ["state-media"])
    assert imported["https://www.granma.cu/feed"] == (None, [])
    # a `${…}` reference is refused on the way in: a stranger's list could read the environment
    assert "https://env.example/rss" not in imported
    assert "  ! https://${FEED_HOST}/rss: contains `${`" in back.stdout


def test_export_to_standard_output(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    result = run_cli("feeds", "export", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout.encode())
    assert len([o for o in root.iter("outline") if o.get("xmlUrl")]) == 2


def test_imported_feeds_are_polled_and_the_listing_still_works(
    tmp_path: Path, server: LocalServer
) -> None:
    serve_feed(server, "/wire.xml", feed_document("havana-wire.xml"))
    serve_feed(server, "/prensa.xml", feed_document("prensa-es.xml"))
    opml = ET.Element("opml", version="2.0")
    body = ET.SubElement(opml, "body")
    folder = ET.SubElement(body, "outline", text="Test outlets")
    for name, path in (("Wire", "/wire.xml"), ("Prensa", "/prensa.xml")):
        ET.SubElement(folder, "outline", type="rss", text=name, xmlUrl=server.url(path))
    source = tmp_path / "local.opml"
    source.write_bytes(ET.tostring(opml, xml_declaration=True, encoding="utf-8"))
    config = config_dir(tmp_path, "version: 1\nrules: rules/\nfeeds: []\n")
    imported = run_cli("feeds", "import", str(source), "--config", str(config), cwd=tmp_path)
    assert imported.stdout.startswith("added 2 feeds"), imported.stdout + imported.stderr
    once = run_cli("run", "--once", "--config", str(config), cwd=tmp_path)
    assert once.returncode == 0, once.stderr
    assert "2 feeds polled (2 fetched" in once.stdout
    listed = run_cli("feeds", "--json", "--config", str(config), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [row["name"] for row in rows] == ["Wire", "Prensa"]
    assert all(row["status"] == "ok" for row in rows)
    assert load_config(config).settings.feeds[0].tags == ["test-outlets"]


def test_a_hostile_feed_list_adds_only_its_real_feed(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    env = {"ANALYSTS_SECRET": "whsec_do-not-leak"}
    result = run_cli(
        "feeds", "import", str(OPML / "hostile.opml"), "--config", str(config),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith("skipped 0 duplicates, 5 invalid")
    assert "  + https://fine.example/rss  (Fine)" in result.stdout
    reasons = [line for line in result.stdout.splitlines() if line.startswith("  ! ")]
    assert sum("reads as an environment variable" in line for line in reasons) == 2
    assert any(
        "javascript:" in line and "not an http:// or https:// URL" in line for line in reasons
    )
    assert any(line.endswith("a subscription list, not a feed") for line in reasons)
    text = (config / "monitor.yaml").read_text(encoding="utf-8")
    assert "${" not in text.split("  # more to come")[0].split("interval: 30m")[1]
    names = [f.name for f in load_config(config, env).settings.feeds]
    assert "whsec_do-not-leak" not in repr(names)
    assert "whsec_do-not-leak" not in result.stdout + result.stderr


def test_a_latin_1_export_is_read_in_its_declared_encoding(tmp_path: Path) -> None:
    config = config_dir(tmp_path)
    result = run_cli(
        "feeds", "import", str(OPML / "latin1.opml"), "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    feed = load_config(config).settings.feeds[-1]
    assert (feed.url, feed.name, feed.tags) == (
        "https://economia.example.es/rss", "Diario de la Economía", ["economia"],
    )  # fmt: skip
