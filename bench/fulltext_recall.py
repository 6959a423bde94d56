"""What full text adds: precision and recall of the shipped rules on headline-only items, then
with their article pages read the way the daemon reads them (docs/rules.md, "Full text").

    .venv/bin/python bench/fulltext_recall.py [--data tests/data/fulltext/labeled.jsonl]
                                              [--rules config/rules]

Each labeled item is a headline and its article (body paragraphs and readers' comments); the
page is rendered into one of three site layouts (navigation that names the states, ads,
comments) and given to the same steps as in the daemon: `Matcher.page_candidates` picks the
items whose page would be fetched, `monitor.feeds.article.extract_text` (trafilatura) takes its
main text, the candidate rules are matched again with it as `content`. A third run matches the
whole page's text without extraction, to show what the extractor buys. Every rule the labels
name reads pages; those whose default prefilter can never hold get the prefilter below.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from monitor.feeds.article import Page, extract_text
from monitor.feeds.normalize import html_to_text
from monitor.matching import Matcher, RuleFile, compile_rules
from monitor.models import Item

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "tests" / "data" / "fulltext" / "labeled.jsonl"
DEFAULT_RULES = ROOT / "config" / "rules"
# a rule whose match needs one part (an `any` at the top) has no default prefilter
PREFILTERS: dict[str, object] = {
    "us-pressure-on-cuba": {"any": ["$usa_side", "$cuba_side", "$us_cuba_instruments"]},
}
NAV = {
    "en": ["World", "Russia", "Cuba", "Venezuela", "Sanctions", "Sport"],
    "es": ["Internacional", "Rusia", "Cuba", "Venezuela", "Sanciones", "Deportes"],
    "ru": ["В мире", "Россия", "Куба", "Венесуэла", "Санкции", "Спорт"],
}
ADS = {
    "en": "Cheap flights to Havana and Moscow: book today!",
    "es": "Vuelos baratos a La Habana y Moscú: ¡reserve ya!",
    "ru": "Дешёвые билеты в Гавану и Москву — только до пятницы!",
}


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)
    false: list[str] = field(default_factory=list)

    def line(self, name: str) -> str:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        return (
            f"  {name:<22} tp {self.tp:>2}  fp {self.fp:>2}  fn {self.fn:>2}  "
            f"precision {precision:5.2f}  recall {recall:5.2f}"
        )


def load_matcher(rules: Path, wanted: set[str]) -> Matcher:
    files = []
    for path in sorted(p for p in rules.rglob("*.yaml")):
        model = RuleFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        for rule in model.rules:
            if rule.id in wanted:
                rule.fulltext = True
                if rule.id in PREFILTERS:
                    prefilter = RuleFile.model_validate(
                        {"rules": [{"id": "p", "title": "p", "match": PREFILTERS[rule.id]}]}
                    )
                    rule.prefilter = prefilter.rules[0].match
        files.append((path, model))
    compiled = compile_rules(files)
    if isinstance(compiled, list):
        raise SystemExit("\n".join(f"{p.path}: {p.loc}: {p.message}" for p in compiled))
    return compiled


def render(row: dict[str, object], layout: int) -> bytes:
    """The item's article page in one of three layouts, as news sites build them."""
    lang = str(row["lang"])
    page: dict[str, list[str]] = row["page"]  # type: ignore[assignment]
    title = html.escape(str(row["title"]))
    nav = "".join(
        f'<li><a href="/s/{i}">{html.escape(n)}</a></li>' for i, n in enumerate(NAV[lang])
    )
    body = "".join(f"<p>{html.escape(p)}</p>" for p in page["body"])
    comments = "".join(
        f'<div class="comment"><b>reader{i}</b><p>{html.escape(c)}</p></div>'
        for i, c in enumerate(page["comments"])
    )
    ad = f'<aside class="ad"><small>Advertisement</small><a href="/ad">{ADS[lang]}</a></aside>'
    if layout == 0:  # semantic markup
        main = (
            f"<main><article><h1>{title}</h1><p class='byline'>By Staff · 2 Dec 2026</p>{body}"
            f"</article><section class='comments'><h2>Comments</h2>{comments}</section></main>"
        )
    elif layout == 1:  # divs only, in the page's language
        main = (
            f"<div id='contenido'><div class='nota'><h1>{title}</h1><div class='cuerpo'>{body}"
            f"</div></div><div class='comentarios'><h3>Comentarios</h3>{comments}</div></div>"
        )
    else:  # a portal: related links and comments in a sidebar
        related = "".join(
            f"<li><a href='/r/{i}'>{html.escape(n)} news</a></li>" for i, n in enumerate(NAV[lang])
        )
        main = (
            f"<div class='page'><div class='text'><h1>{title}</h1>{body}</div>"
            f"<div class='sidebar'><ul>{related}</ul><div class='comments'>{comments}</div>"
            "</div></div>"
        )
    document = (
        f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'><title>{title}</title>"
        f"</head><body><header><a href='/'>Site</a><nav><ul>{nav}</ul></nav></header>{ad}{main}"
        f"<footer>© 2026 · <a href='/about'>About</a> · <a href='/privacy'>Privacy</a></footer>"
        "</body></html>"
    )
    return document.encode("utf-8")


def whole_page(page: Page) -> str | None:
    return html_to_text(page.body.decode("utf-8"))


def run(
    matcher: Matcher,
    rows: list[dict[str, object]],
    wanted: set[str],
    text_of: Callable[[Page], str | None] | None,
) -> tuple[dict[str, Score], int, list[float]]:
    scores = {rule: Score() for rule in sorted(wanted)}
    fetched = 0
    seconds: list[float] = []
    for index, row in enumerate(rows):
        item = Item(
            title=str(row["title"]), lang=str(row["lang"]), link=f"https://n.example/{index}"
        )
        found = {match.rule_id for match in matcher.match(item)}
        if text_of is not None:
            candidates = matcher.page_candidates(item, found)
            if candidates:
                fetched += 1
                started = time.perf_counter()
                text = text_of(Page(item.link or "", render(row, index % 3)))
                seconds.append(time.perf_counter() - started)
                if text:
                    reread = dataclasses.replace(item, content=text)
                    found |= {m.rule_id for m in matcher.match(reread) if m.rule_id in candidates}
        labels = set(row["labels"])  # type: ignore[call-overload]
        for rule, score in scores.items():
            if rule in found and rule in labels:
                score.tp += 1
            elif rule in found:
                score.fp += 1
                score.false.append(str(row["id"]))
            elif rule in labels:
                score.fn += 1
                score.misses.append(str(row["id"]))
    return scores, fetched, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    args = parser.parse_args(argv)
    rows = [
        row
        for line in args.data.read_text(encoding="utf-8").splitlines()
        if line.strip() and not (row := json.loads(line)).get("ambiguous")
    ]
    wanted = {label for row in rows for label in row["labels"]}
    matcher = load_matcher(args.rules, wanted)
    started = time.perf_counter()
    import trafilatura  # noqa: F401, PLC0415 - its import cost, measured apart

    imported = time.perf_counter() - started
    print(f"{len(rows)} items ({args.data.name}); trafilatura imported in {imported * 1000:.0f} ms")
    for name, text_of in (
        ("headline only", None),
        ("full text (trafilatura)", extract_text),
        ("whole page, no extraction", whole_page),
    ):
        scores, fetched, seconds = run(matcher, rows, wanted, text_of)
        total = Score(
            sum(s.tp for s in scores.values()),
            sum(s.fp for s in scores.values()),
            sum(s.fn for s in scores.values()),
        )
        pages = f"; pages read {fetched}/{len(rows)}" if text_of is not None else ""
        if seconds:
            mean, most = 1000 * sum(seconds) / len(seconds), 1000 * max(seconds)
            pages += f", extraction {mean:.1f} ms each (max {most:.1f})"
        print(f"{name}{pages}")
        for rule, score in scores.items():
            print(score.line(rule))
            if score.misses:
                print(f"    missed: {', '.join(score.misses)}")
            if score.false:
                print(f"    false: {', '.join(score.false)}")
        print(total.line("all"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
