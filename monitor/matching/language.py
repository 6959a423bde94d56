"""An item's language, for a rule's `lang:`: declared where it can be, identified where not.

    item.lang (the feed's `lang:` in the config, else the document's own: the entry's, the
    feed's <language>, Content-Language) ──> its primary subtag (`es-ES` -> `es`)
    none declared ──> py3langid on the title, summary and content (capped), once per item

py3langid's model is loaded on first use, once per process, so configs without `lang:` rules and
commands that never meet an undeclared item never pay for it (figures in docs/rules.md). Its
guess is used only to decide whether a `lang:` rule applies; it does not become the item's
language for matching, where a wrong guess would change how words are read.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from monitor.models import Item

MAX_CHARS = 2000  # of the item's text given to the identifier: enough, and bounded CPU
How = Literal["declared", "identified"]
_lock = threading.Lock()
_identifier: list[Any] = []  # the loaded py3langid identifier, once


@dataclass(frozen=True, slots=True)
class ItemLanguage:
    code: str | None  # None: nothing declared and nothing to identify
    how: How

    def describe(self) -> str:
        if self.code is None:
            return "unknown (no text to identify)"
        source = "declared by the feed" if self.how == "declared" else "identified by py3langid"
        return f"{self.code} ({source})"


def primary(tag: str | None) -> str | None:
    """`es-ES`, `es_es`, ` ES ` -> `es`; None for nothing."""
    if not tag:
        return None
    code = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return code or None


def item_language(item: Item) -> ItemLanguage:
    declared = primary(item.lang)
    if declared is not None:
        return ItemLanguage(declared, "declared")
    text = " ".join(part for part in (item.title, item.summary, item.content) if part)
    return ItemLanguage(identify(text[:MAX_CHARS]) if text.strip() else None, "identified")


def identify(text: str) -> str:
    """py3langid's best guess for `text` (an ISO 639-1 code such as `en`)."""
    code, _score = _model().classify(text)
    return str(code)


def _model() -> Any:
    if not _identifier:
        with _lock:  # matching may run in several threads: one load
            if not _identifier:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier  # noqa: PLC0415

                _identifier.append(LanguageIdentifier.from_model_file(MODEL_FILE))
    return _identifier[0]


class Lazy:
    """An item's language, worked out on the first rule that asks (most items reach none)."""

    __slots__ = ("_item", "_language")

    def __init__(self, item: Item) -> None:
        self._item = item
        self._language: ItemLanguage | None = None

    def get(self) -> ItemLanguage:
        if self._language is None:
            self._language = item_language(self._item)
        return self._language

    def among(self, langs: frozenset[str]) -> bool:
        """Whether a rule limited to `langs` (empty: every language) applies to the item."""
        return not langs or self.get().code in langs
