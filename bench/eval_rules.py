"""Score the shipped rules against a labeled set: precision, recall and F1 per rule and per
language, and every miss.

    .venv/bin/python bench/eval_rules.py [--rules config/rules] [--data ../shared/eval/dev.jsonl]

Items marked `ambiguous` are left out of the scores (see ../shared/eval/LABELING.md). Only
rules that the labels mention are scored. Exit status: 0, or 2 when the rules or data cannot
be read.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.matching.morph import russian_words
from monitor.models import Item
from monitor.text import is_cyrillic, tokenize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "dev.jsonl"
DEFAULT_RULES = ROOT / "config" / "rules"
_TAG = re.compile(r"<[^>]*>")


def rule_paths(rules: Path) -> list[Path]:
    if rules.is_file():
        return [rules]
    return sorted(p for p in rules.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_matcher(rules: Path, analyzer: str | None = "lemma") -> Matcher:
    """Read and compile rule files (plain YAML + pydantic; no line positions here)."""
    files: list[tuple[Path, RuleFile]] = []
    for path in rule_paths(rules):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        try:
            files.append((path, RuleFile.model_validate(data)))
        except ValidationError as error:
            raise SystemExit(f"{path}: invalid rule file\n{error}") from error
    compiled = compile_rules(files, analyzer=analyzer)
    if isinstance(compiled, list):
        lines = [f"{p.path}: {'.'.join(map(str, p.loc))}: {p.message}" for p in compiled]
        raise SystemExit("\n".join(lines))
    return compiled


def to_item(row: dict[str, object], language: str = "hint") -> Item:
    """An item as the feed parser would make it: HTML stripped, entities decoded. `language`:
    `hint` keeps the outlet's language (feeds declare one), `none` drops it (Latin words are
    then read as English and Spanish both), `guess` asks py3langid."""

    def plain(key: str) -> str:
        return " ".join(html.unescape(_TAG.sub(" ", str(row.get(key) or ""))).split())

    title, summary = plain("title"), plain("summary")
    lang = str(row.get("lang") or "") or None
    if language == "none":
        lang = None
    elif language == "guess":
        lang = _guess(f"{title}. {summary}")
    return Item(title=title, summary=summary, guid=str(row.get("id", "")), lang=lang)


def _guess(text: str) -> str:
    import py3langid  # noqa: PLC0415 - only this measurement uses it

    if not _GUESSING:
        py3langid.set_languages(["en", "es", "ru"])
        _GUESSING.append(True)
    lang, _ = py3langid.classify(text)
    return str(lang)


_GUESSING: list[bool] = []


@dataclass
class Tally:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, predicted: bool, wanted: bool) -> None:
        self.tp += predicted and wanted
        self.fp += predicted and not wanted
        self.fn += wanted and not predicted

    def scores(self) -> tuple[float, float, float]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        total = precision + recall
        return precision, recall, (2 * precision * recall / total if total else 0.0)


def read_rows(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def evaluate(
    matcher: Matcher, rows: Iterable[dict[str, object]], language: str = "hint"
) -> tuple[dict[str, Tally], dict[tuple[str, str], Tally], int]:
    """Tallies per rule and per (rule, language), and how many ambiguous items were skipped."""
    per_rule: dict[str, Tally] = {}
    per_lang: dict[tuple[str, str], Tally] = {}
    skipped = 0
    rows = list(rows)
    scored = sorted({str(label) for row in rows for label in row.get("labels", []) or []})  # type: ignore[union-attr]
    for row in rows:
        if row.get("ambiguous"):
            skipped += 1
            continue
        fired = {m.rule_id for m in matcher.match(to_item(row, language))}
        labels = set(row.get("labels", []) or [])  # type: ignore[call-overload]
        for rule_id in scored:
            predicted, wanted = rule_id in fired, rule_id in labels
            tally = per_rule.setdefault(rule_id, Tally())
            tally.add(predicted, wanted)
            per_lang.setdefault((rule_id, str(row.get("lang"))), Tally()).add(predicted, wanted)
            if predicted != wanted:
                kind = "FP" if predicted else "FN"
                tally.misses.append(
                    f"  {kind} {row.get('id')} [{row.get('lang')}] {row.get('title')}"
                )
    return per_rule, per_lang, skipped


def report(per_rule: dict[str, Tally], per_lang: dict[tuple[str, str], Tally], skipped: int) -> str:
    lines = [f"{'rule':<28}{'lang':<6}{'P':>7}{'R':>7}{'F1':>7}   tp  fp  fn"]
    for rule_id, tally in per_rule.items():
        p, r, f = tally.scores()
        lines.append(
            f"{rule_id:<28}{'all':<6}{p:7.3f}{r:7.3f}{f:7.3f} {tally.tp:4}{tally.fp:4}{tally.fn:4}"
        )
        for (rid, lang), lang_tally in sorted(per_lang.items()):
            if rid == rule_id:
                p, r, f = lang_tally.scores()
                lines.append(
                    f"{'':<28}{lang:<6}{p:7.3f}{r:7.3f}{f:7.3f} "
                    f"{lang_tally.tp:4}{lang_tally.fp:4}{lang_tally.fn:4}"
                )
    worst = min((t.scores()[2] for t in per_rule.values()), default=0.0)
    lines.append(f"worst per-rule F1: {worst:.3f} ({skipped} ambiguous items left out)")
    for rule_id, tally in per_rule.items():
        if tally.misses:
            lines.append(f"misses of {rule_id}:")
            lines.extend(tally.misses)
    return "\n".join(lines)


def collisions(matcher: Matcher, texts: Iterable[str]) -> dict[str, dict[str, str]]:
    """Every distinct word of `texts` that a term matches only as another form (inflected,
    transliterated or fuzzy), by term: the list to read for false friends."""
    found: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for text in texts:
        for token in tokenize(text):
            if token.cased in seen:
                continue
            seen.add(token.cased)
            for label, how, lang in matcher.word_matches(token):
                if how not in ("exact", "prefix"):
                    found.setdefault(label, {})[token.cased] = f"{how} {lang}".strip()
    return found


def corpus_texts(folder: Path) -> list[str]:
    """The text of every file under `folder`, markup and all (words are what counts)."""
    return [
        html.unescape(_TAG.sub(" ", path.read_bytes().decode("utf-8", "replace")))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="rule file or folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labeled JSON Lines")
    parser.add_argument(
        "--analyzer", choices=["lemma", "morph", "stem", "none"], default="lemma",
        help="morphology for plain words: lemma (pymorphy3 + simplemma, the default), morph "
        "(pymorphy3 + Snowball), stem (Snowball), none (words match as written)",
    )  # fmt: skip
    parser.add_argument(
        "--language", choices=["hint", "none", "guess"], default="hint",
        help="item language: the outlet's (hint, default), none (Latin words read as English "
        "and Spanish both), or guessed by py3langid",
    )  # fmt: skip
    parser.add_argument(
        "--collisions", type=Path, metavar="FOLDER",
        help="instead of scoring: list the words of the files under FOLDER, of --data and of "
        "pymorphy3's dictionary (words that share a Russian term word's first three letters) "
        "that a term matches only as another form, to read for false friends",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.collisions is not None:
        return _print_collisions(args)
    if not args.data.is_file():
        print(
            f"no labeled data at {args.data}: pass --data PATH "
            "(the eval set lives in ../shared/eval/ beside the repository)",
            file=sys.stderr,
        )
        return 2
    try:
        matcher = load_matcher(args.rules, None if args.analyzer == "none" else args.analyzer)
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    print(report(*evaluate(matcher, read_rows(args.data), args.language)))
    return 0


def russian_dictionary_texts(matcher: Matcher) -> list[str]:
    """pymorphy3's known words that share the first three letters of a Cyrillic term word,
    each twice (lower case and capitalized): where Russian false friends would be."""
    prefixes = {
        token.lower[:3]
        for rule_term in matcher.term_labels()
        for token in tokenize(rule_term)
        if len(token.lower) >= 4 and is_cyrillic(token.lower)
    }
    words = [word for prefix in sorted(prefixes) for word in russian_words(prefix)]
    return [" ".join(words), " ".join(word.capitalize() for word in words)]


def _print_collisions(args: argparse.Namespace) -> int:
    matcher = load_matcher(args.rules, None if args.analyzer == "none" else args.analyzer)
    texts = corpus_texts(args.collisions) + russian_dictionary_texts(matcher)
    if args.data.is_file():
        texts += [
            f"{row.get('title', '')} {row.get('summary', '')}" for row in read_rows(args.data)
        ]
    for label, words in sorted(collisions(matcher, texts).items()):
        shown = ", ".join(f"{word} ({how})" for word, how in sorted(words.items()))
        print(f"{label}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
