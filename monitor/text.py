"""Text folding and tokenizing, keeping offsets: a leaf that matching and story grouping share.

Matching compares *folded* words: case-folded, accents and other combining marks removed
(Álvarez = alvarez, Гаване = гаване, ё = е), HTML tags skipped and entities decoded. Each
word also has a Latin *key* (Cyrillic and other scripts transliterated by anyascii), so a Latin
alias reaches Cyrillic text and back: Kolokoltsev ~ Колокольцевым, Путин ~ Putin.

The offsets of a `Token` always point into the text as the item has it, entities and all,
so an explanation can quote and highlight the original.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii

# A word: letters, digits and combining marks (so text in decomposed form stays one word).
WORD = re.compile(r"(?:\w|[\u0300-\u036f])+")
# Markup that RSS descriptions carry: tags are skipped, entities decoded.
_MARKUP = re.compile(
    r"<[^<>]{0,500}>|&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
)
_TAG = re.compile(r"<[^<>]{0,500}>")
_NOT_KEY = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a text: folded, with accents folded but case kept, and its offsets."""

    folded: str  # case- and accent-folded: the form terms are compared with
    cased: str  # accent-folded, case kept: for case-sensitive terms such as `US`
    start: int  # offsets into the original text
    end: int
    # case-folded with accents and other marks kept (`sanción`, `кубой`): what the morphology
    # analyzers read, since folding `й` to `и` or `ó` to `o` changes the word they see
    lower: str = ""


# Distinct words each cache of word analysis keeps (here, the morphology, story grouping). A
# daemon meets an open vocabulary, so every such cache fills and stays full: its size is memory
# held for good. News vocabulary is skewed enough that a cache this size keeps nearly all the
# hits of one four times larger (figures in the commit that set it).
WORD_CACHE = 16384


@lru_cache(maxsize=WORD_CACHE)
def strip_marks(text: str) -> str:
    """Remove accents and other combining marks, keeping the base letters (NFKD, then NFC)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


@lru_cache(maxsize=WORD_CACHE)
def fold(word: str) -> str:
    """Case- and accent-fold one word: `Álvarez` → `alvarez`, `Кубой` → `кубои`."""
    return strip_marks(word.casefold())


@lru_cache(maxsize=WORD_CACHE)
def lower_word(word: str) -> str:
    """Case-fold one word, keeping its accents (in composed form): `Sanción` → `sanción`."""
    return unicodedata.normalize("NFC", word.casefold())


@lru_cache(maxsize=WORD_CACHE)
def latin_key(folded: str) -> str:
    """The Latin transliteration of a folded word, letters and digits only: `колокольцев` →
    `kolokoltsev`. Latin words map to themselves."""
    return _NOT_KEY.sub("", anyascii(folded).lower())


def is_latin(folded: str) -> bool:
    return folded.isascii()


def is_cyrillic(word: str) -> bool:
    """Whether the word has a Cyrillic letter (Russian words; a mixed word counts as Cyrillic)."""
    return any("\u0400" <= ch <= "\u04ff" for ch in word)


def words(text: str) -> list[str]:
    """The words of `text`, case-folded but not accent-folded, without offsets: the quick first
    look at an item (tags skipped, entities decoded)."""
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return WORD.findall(text.casefold())


def _clean(text: str) -> tuple[str, list[int] | None]:
    """Text with tags blanked and entities decoded, and for each of its characters the offset
    of the original character it came from (None when nothing changed)."""
    if "<" not in text and "&" not in text:
        return text, None
    out: list[str] = []
    origin: list[int] = []
    pos = 0
    for markup in _MARKUP.finditer(text):
        out.append(text[pos : markup.start()])
        origin.extend(range(pos, markup.start()))
        token = markup.group()
        decoded = " " if token.startswith("<") else html.unescape(token)
        out.append(decoded)
        origin.extend([markup.start()] * len(decoded))
        pos = markup.end()
    out.append(text[pos:])
    origin.extend(range(pos, len(text)))
    origin.append(len(text))
    return "".join(out), origin


def _end_offset(origin: list[int], text: str, clean_end: int) -> int:
    """The original offset just past the clean character before `clean_end`."""
    last = origin[clean_end - 1]
    if text.startswith("&", last):
        semicolon = text.find(";", last)
        return semicolon + 1 if semicolon >= 0 else last + 1
    return last + 1


def tokenize(text: str) -> list[Token]:
    """The words of `text`, folded, with offsets into `text` itself."""
    clean, origin = _clean(text)
    tokens: list[Token] = []
    for word in WORD.finditer(clean):
        raw = word.group()
        if origin is None:
            start, end = word.start(), word.end()
        else:
            start, end = origin[word.start()], _end_offset(origin, text, word.end())
        folded, cased, lower = fold(raw), strip_marks(raw), lower_word(raw)
        tokens.append(Token(folded=folded, cased=cased, start=start, end=end, lower=lower))
    return tokens
