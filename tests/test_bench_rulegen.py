"""bench/rulegen.py: synthetic rules load like real ones, and are a pure function of the seed."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from bench import rulegen
from monitor.config.settings import load_config
from tests.conftest import REPO


def _config(tmp_path: Path, count: int) -> Path:
    shutil.copytree(REPO / "config" / "rules", tmp_path / "rules")
    rulegen.write(tmp_path / "rules", count, seed=3, per_file=40)
    document = {
        "version": 1,
        "storage": f"sqlite:///{tmp_path / 'monitor.db'}",
        "rules": "rules/",
        "feeds": [{"url": "http://127.0.0.1:1/feed.xml"}],
    }
    (tmp_path / "monitor.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return tmp_path


def test_generated_rules_load_with_their_examples(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 100), {})  # runs the examples: none may fail
    ids = [rule.id for rule in config.matcher.rules if rule.id.startswith("synthetic-")]
    assert ids == [f"synthetic-{n:04d}" for n in range(1, 101)]
    assert len(list((tmp_path / "rules").glob("synthetic-*.yaml"))) == 3  # 40 a file


def test_generation_is_deterministic() -> None:
    first = rulegen.generate(120, seed=7)
    assert first == rulegen.generate(120, seed=7)
    assert first != rulegen.generate(120, seed=8)
    assert list(first) == ["synthetic-00.yaml", "synthetic-01.yaml", "synthetic-02.yaml"]


def test_rules_are_built_like_real_ones() -> None:
    text = "".join(rulegen.generate(200, seed=1).values())
    for piece in ("any:", "all:", "not:", "near:", "$russia", "*", "examples:"):
        assert piece in text
    assert any("\u0400" <= c <= "\u04ff" for c in text)  # Russian
    assert "á" in text or "é" in text or "ó" in text  # Spanish
