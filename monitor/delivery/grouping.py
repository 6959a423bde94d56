"""Whether two alerts of one rule tell the same story (first version; tuning follows).

Texts are folded with the matcher's own folding, stop words dropped, every word reduced to a
Latin key (transliterated) and a short stem, so `Гаване`, `Havana` and `La Habana` meet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from rapidfuzz import fuzz

from monitor.matching.normalize import latin_key, tokenize

K = TypeVar("K")

THRESHOLD = 55.0

_STOP_WORDS = {
    "en": """a an the of in on at to for from by with and or but as is are was were be been has
    have had it its this that these those after before over about into says said say will would""",
    "es": """el la los las un una unos unas de del en y o a al con por para que se su sus es son
    fue ha han tras sobre ante entre como mas lo le les""",
    "ru": """и в во на с со по к о об от до из за для у что как это его ее их не но а же ли
    при после""",
}
_STOP = frozenset(word for text in _STOP_WORDS.values() for word in text.split())
_ALIASES = {"habana": "havana", "gavana": "havana", "gavane": "havana", "gavanu": "havana"}


@dataclass(frozen=True, slots=True)
class StoryText:
    """What grouping compares of an alert: its item's title and summary, and language hint."""

    title: str
    summary: str = ""
    lang: str | None = None


def _keys(text: str) -> list[str]:
    keys: list[str] = []
    for token in tokenize(text):
        if token.folded in _STOP:
            continue
        key = latin_key(token.folded)
        if not key:
            continue
        key = _ALIASES.get(key, key)[:6]
        keys.append(key)
    return keys


def story_similarity(a: StoryText, b: StoryText) -> float:
    """How alike two stories are, 0..100."""
    title_a, title_b = _keys(a.title), _keys(b.title)
    if not title_a or not title_b:
        return 0.0
    title_score = fuzz.token_set_ratio(" ".join(title_a), " ".join(title_b))
    all_a = set(title_a) | set(_keys(a.summary))
    all_b = set(title_b) | set(_keys(b.summary))
    dice = 200.0 * len(all_a & all_b) / (len(all_a) + len(all_b))
    return 0.5 * title_score + 0.5 * dice


def same_story(a: StoryText, b: StoryText) -> bool:
    """Whether `a` and `b` tell the same story."""
    return story_similarity(a, b) >= THRESHOLD


def best_match(new: StoryText, candidates: Sequence[tuple[K, StoryText]]) -> K | None:
    """The key of the candidate telling the same story as `new` (the most similar), or None."""
    best_key: K | None = None
    best_score = THRESHOLD
    for key, text in candidates:
        score = story_similarity(new, text)
        if score >= best_score:
            best_key, best_score = key, score
    return best_key
