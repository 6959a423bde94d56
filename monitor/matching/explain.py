"""Human-readable explanations of a match, for `monitor match --explain`."""

from __future__ import annotations

from monitor.matching.whynot import Clause, Verdict
from monitor.models import Item, Match, TermHit

CONTEXT = 30  # characters of the field shown either side of a hit


def explain(item: Item, match: Match) -> str:
    """Several lines: the rule, then each term that fired, where, on what text, how well.

    rule russia-cuba-contacts (Russian-Cuban state contacts), severity high, score 100.0
      title[0:6]      "Lavrov" ← term "Lavrov" (exact, 100.0)
                      [Lavrov] in Havana on final leg of Latin America tour
      summary[4:9]    "Кубой" ← term "Куба" (inflected form, ru)
                      …с [Кубой] подписали…
      content[52:58]  "Havana" ← term "Havana" (exact, 100.0)
                      …minister arrived in [Havana] on Tuesday…
                      on the article page https://news.example/2026/lavrov-havana
    """
    lines = [
        f"rule {match.rule_id} ({match.rule_title}), severity {match.severity}, "
        f"score {match.score:.1f}"
    ]
    if not match.hits:
        lines.append("  (no term hits: the rule matched through its exclusions only)")
    for hit in match.hits:
        where = f"{hit.field}[{hit.start}:{hit.end}]"
        lines.append(f'  {where:<16}"{hit.text}" ← term "{hit.term}" ({how_matched(hit)})')
        lines.append(" " * 18 + _context(item.field_text(hit.field), hit.start, hit.end))
        if hit.source == "page":
            lines.append(" " * 18 + f"on the article page {item.link or '(no link)'}")
    return "\n".join(lines)


def how_matched(hit: TermHit) -> str:
    """`exact, 100.0`, `inflected form, ru`, `transliterated, 90.9`, `fuzzy, 92.3`."""
    if hit.how == "inflected":
        return f"inflected form, {hit.lang}" if hit.lang else "inflected form"
    return f"{hit.how}, {hit.score:.1f}"


def hit_line(hit: TermHit) -> str:
    """One hit on one line: `"Кубой" ← term "Куба" (inflected form, ru)`, for reports."""
    return f'"{hit.text}" ← term "{hit.term}" ({how_matched(hit)})'


def _context(text: str, start: int, end: int) -> str:
    before = text[max(0, start - CONTEXT) : start]
    after = text[end : end + CONTEXT]
    lead = "…" if start > CONTEXT else ""
    trail = "…" if end + CONTEXT < len(text) else ""
    snippet = f"{lead}{before}[{text[start:end]}]{after}{trail}"
    return " ".join(snippet.split())


CLAUSE_WIDTH = 72  # characters of a clause shown: long `not` lists are cut, the path says where


def explain_miss(verdict: Verdict) -> str:
    """Why a rule did not match, clause by clause, with the near misses of absent terms.

    rule russia-cuba-contacts (Russian–Cuban state contacts): no match
      holds  all[0] near [$russia_side, $cuba_side] within 8: "Путину" (title), …
      fails  all[1] $contact: no term of the set (178 terms) occurs
               near miss "позвонил" (title) ~ term "постав(ит|ил)", 62.5: below the threshold 88
    """
    lines = [f"rule {verdict.rule_id} ({verdict.rule_title}): no match"]
    for clause in verdict.clauses:
        _clause_lines(clause, 1, lines)
    return "\n".join(lines)


def _clause_lines(clause: Clause, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    text = clause.clause
    if len(text) > CLAUSE_WIDTH:
        text = text[: CLAUSE_WIDTH - 1] + "…"
    state = "holds" if clause.holds else "fails"
    lines.append(f"{pad}{state}  {clause.path} {text}: {clause.reason}")
    if clause.absent and not clause.holds and len(clause.absent) > 1:
        lines.append(f"{pad}         absent: {', '.join(clause.absent)}")
    for miss in clause.near_misses:
        lines.append(
            f'{pad}         near miss "{miss.word}" ({miss.field}) ~ term "{miss.term}", '
            f"{miss.score:.1f}: {miss.reason}"
        )
    for part in clause.parts:
        _clause_lines(part, depth + 1, lines)
