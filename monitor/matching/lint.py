"""Advice on terms that compile but are not what their writer meant: `monitor check` prints it
as hints and warnings, and a config with only those is still valid.

- hint: a hand-written list of endings that inflection already covers (`Куб(а|ы|е|у|ой)` is
  `Куба`), or a word that is not in its dictionary form, so only that very form matches
  (`sanctions`: write `sanction`).
- warning: a term that cannot match what it seems to say: braces or brackets, which the rule
  language does not have (`dissident{,s}` is the two words `dissident s` in a row), or an
  `unless` phrase that shares no word with its term and so never cancels a hit.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from monitor.matching.lexicon import MIN_INFLECTED, expand_alternatives
from monitor.matching.morph import Analyzer, Key, language_of, suggested_lemma
from monitor.matching.schema import Condition, TermSpec
from monitor.text import Token, tokenize

_FOREIGN_SYNTAX = re.compile(r"[{}\[\]]")
Advice = tuple[str, str]  # severity (hint | warning), message


def term_advice(
    spec: TermSpec | Condition, analyzer: Analyzer | None, is_name: Callable[[Token], bool]
) -> list[Advice]:
    """Hints and warnings for one term as a rule writes it."""
    text = spec.term or ""
    advice: list[Advice] = []
    if _FOREIGN_SYNTAX.search(text):
        advice.append(("warning", _braces(text)))
    advice.extend(_unless_advice(text, spec.unless))
    plain = not (spec.exact or spec.case_sensitive or spec.prefix or "*" in text)
    if analyzer is None or not plain or not spec.whole_word:
        return advice
    variants = expand_alternatives(text)
    if len(variants) > 1:
        base = _covering_form(variants, analyzer, is_name)
        if base is not None:
            advice.append(("hint", f"`{text}`: inflection matches every form of `{base}`; "
                                   f"write `{base}` alone"))  # fmt: skip
    elif (better := _dictionary_form(text, analyzer, is_name)) is not None:
        advice.append(("hint", f"`{text}` is not a dictionary form, so only this form matches; "
                               f"write `{better}` to match all of its forms"))  # fmt: skip
    return advice


def _braces(text: str) -> str:
    shown = " ".join(token.folded for token in tokenize(text))
    return (
        f"`{text}` can only match the words `{shown}` in a row: braces and brackets are not "
        "part of the rule language (alternatives are `(a|b)`, and a plain word already "
        "matches its other forms)"
    )


def _unless_advice(text: str, unless: list[str]) -> list[Advice]:
    words = {token.folded for variant in expand_alternatives(text) for token in tokenize(variant)}
    return [
        ("warning", f"`unless: {phrase}` shares no word with `{text}`: it never cancels a hit")
        for phrase in unless
        if words and words.isdisjoint(token.folded for token in tokenize(phrase))
    ]


def _keys(token: Token, analyzer: Analyzer, name: bool) -> frozenset[Key]:
    word = token.lower
    keys: set[Key] = set()
    for lang in language_of(word):
        keys |= analyzer.dictionary_keys(word, lang, name=name)
    return frozenset(keys)


def _covering_form(
    variants: list[str], analyzer: Analyzer, is_name: Callable[[Token], bool]
) -> str | None:
    """The variant whose inflected forms include every other variant, if one does."""
    tokenized = [tokenize(variant) for variant in variants]
    if len({len(tokens) for tokens in tokenized}) != 1:
        return None
    for variant, base in zip(variants, tokenized, strict=True):
        keys = [_keys(token, analyzer, is_name(token)) for token in base]
        if all(keys) and all(
            token.folded == base[i].folded
            or not keys[i].isdisjoint(analyzer.item_keys(token.lower, language_of(token.lower)))
            for other in tokenized
            for i, token in enumerate(other)
        ):
            return variant
    return None


def _dictionary_form(text: str, analyzer: Analyzer, is_name: Callable[[Token], bool]) -> str | None:
    """For a one-word term that is not a dictionary form: the dictionary form to write."""
    tokens = tokenize(text)
    if len(tokens) != 1 or len(tokens[0].lower) < MIN_INFLECTED or is_name(tokens[0]):
        return None
    token = tokens[0]
    if _keys(token, analyzer, False):
        return None
    lemma = suggested_lemma(token.lower)
    if lemma is None:
        return None
    # suggest it only where it reaches this form (`met` stays: `meet` does not reach it)
    written = tokenize(lemma)
    if len(written) != 1 or _keys(written[0], analyzer, False).isdisjoint(
        analyzer.item_keys(token.lower, language_of(token.lower))
    ):
        return None
    return lemma
