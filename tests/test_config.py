"""Config and rule files: valid ones load, every kind of mistake is reported as PATH:LINE:COL."""

from __future__ import annotations

import json
import textwrap
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml

from monitor.config.settings import load_config
from monitor.errors import ConfigError
from tests.conftest import REPO, run_cli
from tests.support.receiver import SECRET

RULES = """\
version: 1
rules:
  - id: havana-watch
    title: Havana in the news
    match:
      any: [Havana, La Habana]
"""


def _write(tmp_path: Path, config: str, rules: dict[str, str] | None = None) -> Path:
    (tmp_path / "monitor.yaml").write_text(textwrap.dedent(config), encoding="utf-8")
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for name, text in (rules or {"main.yaml": RULES}).items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def _problems(
    tmp_path: Path,
    config: str,
    rules: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
) -> list[str]:
    directory = _write(tmp_path, config, rules)
    with pytest.raises(ConfigError) as caught:
        load_config(directory, environ or {})
    return [str(p).replace(str(tmp_path) + "/", "") for p in caught.value.problems]


def test_the_shipped_config_is_valid_and_real() -> None:
    config = load_config(REPO / "config", {})
    feeds = config.settings.feeds
    assert 15 <= len(feeds) <= 30
    assert all(f.url.startswith(("http://", "https://")) for f in feeds)
    assert config.settings.defaults.backfill == timedelta(hours=24)
    rule_ids = {rule.id for rule in config.matcher.rules}
    assert {"russia-cuba-contacts", "us-pressure-on-cuba"} <= rule_ids
    assert config.storage_url == "sqlite:///data/monitor.db"


def test_environment_substitution_and_storage_override(tmp_path: Path) -> None:
    directory = _write(
        tmp_path,
        """\
        webhooks:
          - name: analysts
            url: https://hooks.example.org/${HOOK_PATH}
            secret: ${HOOK_SECRET}
            retry: [1s, 1m]
        """,
    )
    env = {"HOOK_PATH": "p/1", "HOOK_SECRET": SECRET, "MONITOR_STORAGE": "sqlite:///x.db"}
    config = load_config(directory, env)
    (hook,) = config.settings.webhooks
    assert hook.url == "https://hooks.example.org/p/1"
    assert hook.secret is not None
    assert hook.secret.get_secret_value() == SECRET
    assert hook.retry == [timedelta(seconds=1), timedelta(minutes=1)]
    assert config.storage_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(
            "feeds:\n  - url: https://a.example/rss\n    intervall: 5m\n",
            "monitor.yaml:3:5: unknown key 'intervall'; did you mean 'interval'?",
            id="unknown-key",
        ),
        pytest.param(
            "defaults:\n  interval: [5m]\n",
            "monitor.yaml:2:13: defaults.interval: a duration is written as text",
            id="wrong-type",
        ),
        pytest.param(
            "defaults:\n  interval: 10 minutes\n",
            "monitor.yaml:2:13: defaults.interval: invalid duration '10 minutes'",
            id="bad-duration",
        ),
        pytest.param(
            "defaults:\n  backfill: yesterday\n",
            "monitor.yaml:2:13: defaults.backfill: invalid backfill 'yesterday'",
            id="bad-backfill",
        ),
        pytest.param(
            "feeds:\n  - url: https://a.example/${FEED_TOKEN}\n",
            "monitor.yaml:2:10: environment variable FEED_TOKEN is not set",
            id="missing-env",
        ),
        pytest.param(
            "feeds: []\nfeeds: []\n",
            "monitor.yaml:2:1: duplicate key 'feeds'",
            id="duplicate-key",
        ),
        pytest.param(
            "feeds:\n  - url: [unclosed\n",
            "monitor.yaml:3:1: invalid YAML",
            id="yaml-syntax",
        ),
        pytest.param(
            "feeds:\n\t- url: https://a.example/rss\n",
            "monitor.yaml:2:1: invalid YAML: a tab: YAML indents with spaces only",
            id="yaml-tab",
        ),
        pytest.param(
            "defaults: *missing\n",
            "monitor.yaml:1:11: invalid YAML: YAML reads a value that starts with `*` as an alias",
            id="yaml-undefined-alias",
        ),
        pytest.param(
            "feeds:\n  - name: no url\n",
            "monitor.yaml:2:5: missing required key 'feeds.0.url'",
            id="missing-key",
        ),
        pytest.param(
            "feeds:\n  - url: ftp://a.example/rss\n",
            "monitor.yaml:2:10: feeds.0.url: 'ftp://a.example/rss' is not an http:// or https://",
            id="bad-url",
        ),
        pytest.param(
            "feeds:\n  - url: https://a.example/rss\n  - url: https://a.example/rss\n",
            "monitor.yaml:3:10: duplicate feed url 'https://a.example/rss' (first at item 1)",
            id="duplicate-feed",
        ),
        pytest.param(
            f"webhooks:\n  - name: h\n    url: https://h.example/\n    secret: {SECRET}\n"
            "    rules: [havana-watch, havanna-watch]\n",
            "monitor.yaml:5:27: webhooks.0.rules: unknown rule id 'havanna-watch'; "
            "did you mean 'havana-watch'?",
            id="unknown-rule-in-webhook",
        ),
        pytest.param(
            "webhooks:\n  - name: h\n    url: https://h.example/\n",
            "monitor.yaml:2:5: webhooks.0: format `standard` signs every alert and needs a "
            "`secret`",
            id="missing-secret",
        ),
        pytest.param(
            "webhooks:\n  - name: h\n    url: https://h.example/\n    format: slackk\n"
            f"    secret: {SECRET}\n",
            "monitor.yaml:4:13: webhooks.0.format: Input should be 'standard'",
            id="unknown-format",
        ),
    ],
)
def test_config_problems_name_file_line_and_column(
    tmp_path: Path, config: str, expected: str
) -> None:
    problems = _problems(tmp_path, config)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_duplicate_rule_id_across_files_points_at_the_second(tmp_path: Path) -> None:
    second = RULES.replace("Havana in the news", "Again")
    problems = _problems(tmp_path, "feeds: []\n", {"a.yaml": RULES, "b.yaml": second})
    assert any(p.startswith("rules/b.yaml:3:") and "havana-watch" in p for p in problems), problems


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "feeds:\n  - url: https://a.example/rss\n    intervall: 5m\n  - url: nope\n",
    )
    assert len(problems) == 2


def test_rule_file_problems_have_positions(tmp_path: Path) -> None:
    broken = RULES.replace("    title: Havana in the news\n", "    titel: Havana\n")
    problems = _problems(tmp_path, "feeds: []\n", {"main.yaml": broken})
    assert any(p.startswith("rules/main.yaml:4:5: unknown key 'titel'") for p in problems), problems


def test_check_cli_exits_2_with_positions_and_0_when_valid(tmp_path: Path) -> None:
    _write(tmp_path, "defaults:\n  interval: soon\n")
    broken = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert broken.returncode == 2
    # paths relative to the config folder, which the count names
    assert broken.stderr.startswith("monitor.yaml:2:13: defaults.interval: invalid duration")
    assert f"1 problem found in {tmp_path}\n" in broken.stderr

    valid = run_cli("check", "--config", str(REPO / "config"), cwd=tmp_path)
    assert valid.returncode == 0, valid.stderr
    assert "valid" in valid.stdout


def test_run_with_an_invalid_config_exits_2(tmp_path: Path) -> None:
    _write(tmp_path, "feeds: 3\n")
    result = run_cli("run", "--once", "--config", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert "monitor.yaml:1:8: feeds: Input should be a valid list" in result.stderr


def _validator(schema: dict[str, object]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_validates_the_shipped_files(tmp_path: Path) -> None:
    config_schema = json.loads(run_cli("schema", "config", cwd=tmp_path).stdout)
    rules_schema = json.loads(run_cli("schema", "rules", cwd=tmp_path).stdout)
    both = json.loads(run_cli("schema", cwd=tmp_path).stdout)
    shipped = yaml.safe_load((REPO / "config" / "monitor.yaml").read_text(encoding="utf-8"))
    _validator(config_schema).validate(shipped)
    _validator(both).validate(shipped)
    for path in sorted((REPO / "config" / "rules").glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        _validator(rules_schema).validate(document)
        _validator(both).validate(document)
    with pytest.raises(jsonschema.ValidationError):
        _validator(config_schema).validate({"feeds": [{"url": "https://a", "intervall": "5m"}]})


def test_the_schema_files_shipped_for_editors_are_current(tmp_path: Path) -> None:
    for kind, name in (("config", "monitor.schema.json"), ("rules", "rules.schema.json")):
        printed = json.loads(run_cli("schema", kind, cwd=tmp_path).stdout)
        shipped = json.loads((REPO / "config" / "schema" / name).read_text(encoding="utf-8"))
        assert printed == shipped, f"regenerate with: monitor schema {kind} > config/schema/{name}"


UNSET_SECRETS = """\
feeds:
  - url: https://a.example/rss
    headers:
      Authorization: Bearer ${WHYNOT_UNSET_TOKEN}
webhooks:
  - name: analysts
    url: ${WHYNOT_UNSET_URL}
    secret: ${WHYNOT_UNSET_SECRET}
  - name: rotating
    url: https://hooks.example.org/${WHYNOT_UNSET_PATH}
    secret: ["${WHYNOT_UNSET_NEW}", "${WHYNOT_UNSET_OLD}"]
"""
UNSET_NAMES = ["TOKEN", "URL", "SECRET", "PATH", "NEW", "OLD"]


def test_unset_credentials_are_warnings_where_nothing_is_delivered(tmp_path: Path) -> None:
    directory = _write(tmp_path, UNSET_SECRETS)
    config = load_config(directory, {}, secrets=False)
    where = [
        ("4:22", "TOKEN"), ("7:10", "URL"), ("8:13", "SECRET"), ("10:10", "PATH"),
        ("11:14", "NEW"), ("11:37", "OLD"),
    ]  # fmt: skip
    assert [str(p).replace(str(tmp_path) + "/", "") for p in config.unset] == [
        f"monitor.yaml:{pos}: environment variable WHYNOT_UNSET_{name} is not set "
        "(needed to deliver)"
        for pos, name in where
    ]
    # where it delivers, each one is still a problem
    problems = _problems(tmp_path, UNSET_SECRETS)
    assert [p.split(": ", 1)[1] for p in problems] == [
        f"environment variable WHYNOT_UNSET_{name} is not set" for name in UNSET_NAMES
    ]


def test_unset_variables_outside_credentials_stay_problems(tmp_path: Path) -> None:
    directory = _write(tmp_path, "storage: ${WHYNOT_UNSET_STORAGE}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(directory, {}, secrets=False)
    assert [p.message for p in caught.value.problems] == [
        "environment variable WHYNOT_UNSET_STORAGE is not set"
    ]


@pytest.mark.parametrize(
    ("command", "code"),
    # `status` reads only a store that a daemon has migrated: 1 says so, past the config
    [("match", 0), ("alerts", 0), ("status", 1), ("feeds", 0), ("backtest", 0), ("webhooks", 0)],
)
def test_read_only_commands_need_no_webhook_secrets(
    tmp_path: Path, command: str, code: int
) -> None:
    _write(tmp_path, UNSET_SECRETS)
    result = run_cli(command, "--config", str(tmp_path), cwd=tmp_path, input_text="")
    assert result.returncode == code, result.stderr
    assert "is not set" not in result.stderr + result.stdout


def test_check_warns_of_unset_secrets_and_run_refuses(tmp_path: Path) -> None:
    _write(tmp_path, UNSET_SECRETS)
    checked = run_cli("check", "--config", str(tmp_path), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert (
        "monitor.yaml:8:13: warning: environment variable WHYNOT_UNSET_SECRET "
        "is not set (needed to deliver)"
    ) in checked.stdout.splitlines()
    once = run_cli("run", "--once", "--config", str(tmp_path), cwd=tmp_path)
    assert once.returncode == 2
    assert "monitor.yaml:8:13: environment variable WHYNOT_UNSET_SECRET is not set" in once.stderr
