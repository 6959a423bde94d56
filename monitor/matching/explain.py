"""Human-readable explanations of a match, for `monitor match --explain`."""

from __future__ import annotations

from monitor.models import Item, Match

CONTEXT = 30  # characters of the field shown either side of a hit


def explain(item: Item, match: Match) -> str:
    """Several lines: the rule, then each term that fired, where, on what text, how well.

    rule russia-cuba-contacts (Russian-Cuban state contacts), severity high, score 100.0
      title[0:6]      "Lavrov" ← term "Lavrov" (100.0)
                      [Lavrov] in Havana on final leg of Latin America tour
    """
    lines = [
        f"rule {match.rule_id} ({match.rule_title}), severity {match.severity}, "
        f"score {match.score:.1f}"
    ]
    if not match.hits:
        lines.append("  (no term hits: the rule matched through its exclusions only)")
    for hit in match.hits:
        where = f"{hit.field}[{hit.start}:{hit.end}]"
        how = "exact" if hit.score >= 100 else "fuzzy"
        lines.append(f'  {where:<16}"{hit.text}" ← term "{hit.term}" ({how}, {hit.score:.1f})')
        lines.append(" " * 18 + _context(item.field_text(hit.field), hit.start, hit.end))
    return "\n".join(lines)


def _context(text: str, start: int, end: int) -> str:
    before = text[max(0, start - CONTEXT) : start]
    after = text[end : end + CONTEXT]
    lead = "…" if start > CONTEXT else ""
    trail = "…" if end + CONTEXT < len(text) else ""
    snippet = f"{lead}{before}[{text[start:end]}]{after}{trail}"
    return " ".join(snippet.split())
