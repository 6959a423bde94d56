"""The rule file, as users write it in YAML: pydantic models whose JSON Schema editors use.

A condition is written as a plain string (a term, or `$name` for a term set) or as a mapping:
either a term with options (`term:`) or a group (`all:`, `any:`, `not:`, `near:` + `within:`).
At run time both mappings validate into one flat `Condition`, so validation errors point
straight at the YAML key (`("rules", 0, "match", "all", 1, "threshold")`) with no union-branch
names in between; the JSON Schema still offers editors the two precise shapes, `TermSpec` and
`Group`. The semantics (references, duplicates, reachability) are checked in `rules.py`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from monitor.durations import BUDGET_PATTERN

FieldName = Literal["title", "summary", "content", "tags"]
Severity = Literal["low", "medium", "high", "critical"]

RULE_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SET_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]*$"
RULE_ID_WORDS = (
    "must be kebab-case (lowercase letters, digits and hyphens, e.g. russia-cuba-visits)"
)
SET_NAME_WORDS = (
    "a term set name starts with a letter, then letters, digits, `_` or `-` (e.g. cuba_side)"
)
TERM_KEYS = (
    "term", "fuzzy", "threshold", "prefix", "whole_word", "case_sensitive", "translit", "exact",
)  # fmt: skip
GROUP_KEYS = ("all", "any", "not", "near")


def _kebab_case(value: str) -> str:
    """Rule ids in words, not as the regex (the JSON Schema still carries the pattern)."""
    if not re.fullmatch(RULE_ID_PATTERN, value):
        raise ValueError(f"{value!r} {RULE_ID_WORDS}")
    return value


def _set_names(value: dict[str, list[TermSpec]]) -> dict[str, list[TermSpec]]:
    for name in value:
        if not re.fullmatch(SET_NAME_PATTERN, name):
            raise ValueError(f"{name!r}: {SET_NAME_WORDS}")
    return value


def _term_shorthand(value: object) -> object:
    """A plain string is a term (or a `$set` reference) with default options."""
    if isinstance(value, str):
        return {"term": value}
    return value


class _TermOptions(BaseModel):
    """How one term is compared with the words of an item."""

    term: Annotated[
        str,
        Field(
            min_length=1,
            title="Term",
            description=(
                "A word or phrase, compared case- and accent-insensitively, whole words only. "
                "Write each word once, in its dictionary form: it matches its inflected forms "
                "in English, Spanish and Russian (`Куба` matches Кубой, `sanción` sanciones, "
                "`visit` visited). `Kreml*` matches words that start with `kreml`; "
                "`(a|b)` lists alternatives; `$name` refers to the term set `name`."
            ),
            examples=["Havana", "La Habana", "Kolokoltsev", "Россия", "sanción", "sanction*"],
        ),
    ]
    fuzzy: Annotated[
        bool | None,
        Field(
            title="Fuzzy",
            description=(
                "Allow typos and transliteration variants. Default: on for words of 6 letters "
                "or more (the threshold grows stricter as words get shorter), off for "
                "shorter words, so `Cubs` never matches `Cuba`."
            ),
        ),
    ] = None
    threshold: Annotated[
        int | None,
        Field(
            ge=0,
            le=100,
            title="Fuzzy threshold",
            description=(
                "Minimum rapidfuzz ratio (0-100) for a fuzzy match; setting it turns `fuzzy` "
                "on. Default depends on word length: 90 for 6-7 letters, 88 for 8-9, 85 above."
            ),
        ),
    ] = None
    prefix: Annotated[
        bool,
        Field(
            title="Prefix",
            description="Match words that start with the term (same as a trailing `*`).",
        ),
    ] = False
    whole_word: Annotated[
        bool,
        Field(
            title="Whole word",
            description="Off: the term may match inside a longer word (`antiterror` in "
            "`antiterrorist`).",
        ),
    ] = True
    case_sensitive: Annotated[
        bool,
        Field(
            title="Case-sensitive",
            description="Compare letter case too: `US` then does not match the word `us`.",
        ),
    ] = False
    translit: Annotated[
        bool,
        Field(
            title="Transliterate",
            description="Also match the term in another script (Latin ↔ Cyrillic).",
        ),
    ] = True
    exact: Annotated[
        bool,
        Field(
            title="Exact form",
            description=(
                "Match only this form of the word (case- and accent-insensitively): no "
                "inflected forms, no typos, no other script. `{term: US, exact: true}`."
            ),
        ),
    ] = False
    unless: Annotated[
        list[str],
        Field(
            title="Unless part of",
            description=(
                "Phrases that cancel a hit of this term where they overlap it: "
                "`{term: Havana, unless: [Havana Illinois, Little Havana]}`."
            ),
        ),
    ] = []


class TermSpec(_TermOptions):
    """A term with options."""

    model_config = ConfigDict(extra="forbid", title="Term")


class _GroupFields(BaseModel):
    all: Annotated[
        list[Node] | None,
        Field(min_length=1, title="All of", description="Every condition must hold."),
    ] = None
    any: Annotated[
        list[Node] | None,
        Field(min_length=1, title="Any of", description="At least one condition must hold."),
    ] = None
    not_: Annotated[
        list[Node] | None,
        Field(
            alias="not",
            min_length=1,
            title="None of",
            description="No condition may hold (exclusions).",
        ),
    ] = None
    near: Annotated[
        list[Node] | None,
        Field(
            min_length=2,
            title="Near",
            description=(
                "Terms, term sets or `any` groups that must all occur in the same field "
                "within `within` words of each other."
            ),
        ),
    ] = None
    within: Annotated[
        int | None,
        Field(
            ge=0,
            le=1000,
            title="Within",
            description="For `near`: the most words allowed between the terms (default 8).",
        ),
    ] = None
    ordered: Annotated[
        bool | None,
        Field(
            title="Ordered",
            description="For `near`: the terms must also occur in the order written "
            "(`near: [sanction*, $cuba], ordered: true` finds sanctions on Cuba).",
        ),
    ] = None


class Group(_GroupFields):
    """A boolean group. Several keys in one mapping must all hold."""

    model_config = ConfigDict(extra="forbid", title="Group", populate_by_name=True)


class Condition(_GroupFields, _TermOptions):
    """What `TermSpec` and `Group` validate into: exactly one of a term or a group."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    term: Annotated[str | None, Field(min_length=1)] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _term_or_group(self) -> Self:
        groups = [key for key in GROUP_KEYS if self.group(key) is not None]
        if self.term is None and not groups:
            raise ValueError("a condition needs `term` or one of `all`, `any`, `not`, `near`")
        if self.term is not None and groups:
            raise ValueError(
                f"a condition is a term or a group, not both (`term` and `{groups[0]}`)"
            )
        if self.within is not None and self.near is None:
            raise ValueError("`within` only goes with `near`")
        if self.ordered is not None and self.near is None:
            raise ValueError("`ordered` only goes with `near`")
        if self.term is None:
            options = [
                key for key in self.model_fields_set if key in TERM_KEYS[1:] or key == "unless"
            ]
            if options:
                raise ValueError(f"`{options[0]}` is a term option; this condition is a group")
        return self

    def group(self, key: str) -> list[Condition] | None:
        value: list[Condition] | None = self.not_ if key == "not" else getattr(self, key)
        return value


Node = Annotated[
    Condition,
    BeforeValidator(_term_shorthand, json_schema_input_type=str | TermSpec | Group),
]
TermEntry = Annotated[
    TermSpec,
    BeforeValidator(_term_shorthand, json_schema_input_type=str | TermSpec),
]


def _rule_schema(schema: dict[str, Any]) -> None:
    """Titles beside `$ref`s, which pydantic leaves out for a field whose type is a model."""
    schema["properties"]["examples"]["title"] = "Examples"


def _example_shorthand(value: object) -> object:
    """A plain string is an example item's title."""
    if isinstance(value, str):
        return {"title": value}
    return value


class ExampleItem(BaseModel):
    """An item for a rule's examples, as a feed would carry it (only the title is needed)."""

    model_config = ConfigDict(extra="forbid", title="Example item")

    title: Annotated[str, Field(min_length=1, title="Title", description="The headline.")]
    summary: Annotated[
        str, Field(title="Summary", description="A sentence or two, as a feed's summary.")
    ] = ""
    content: Annotated[
        str, Field(title="Content", description="More text, as a feed's full content.")
    ] = ""
    lang: Annotated[
        str | None,
        Field(
            title="Language",
            description="The item's language as a feed declares it (`en`, `es`, `ru`); "
            "unset: Latin words are read as English and as Spanish.",
        ),
    ] = None


ExampleEntry = Annotated[
    ExampleItem,
    BeforeValidator(_example_shorthand, json_schema_input_type=str | ExampleItem),
]


class Examples(BaseModel):
    """A rule's tests: `monitor check` fails when one does not come out as written."""

    model_config = ConfigDict(extra="forbid", title="Examples")

    match: Annotated[
        list[ExampleEntry],
        Field(
            title="Must match",
            description="Items the rule must match: a title, or a mapping with `title`, "
            "`summary`, `content`, `lang`.",
            examples=[["Колокольцев прилетел в Гавану"]],
        ),
    ] = []
    no_match: Annotated[
        list[ExampleEntry],
        Field(
            title="Must not match",
            description="Items the rule must not match: the traps it is written to avoid.",
            examples=[["Chicago Cubs win in Havana exhibition"]],
        ),
    ] = []


class Rule(BaseModel):
    """One watch rule: when an item matches `match`, an alert goes out."""

    model_config = ConfigDict(extra="forbid", title="Rule", json_schema_extra=_rule_schema)

    id: Annotated[
        str,
        AfterValidator(_kebab_case),
        Field(
            title="Rule id",
            json_schema_extra={"pattern": RULE_ID_PATTERN},
            description="Stable kebab-case id, unique across all rule files; alerts carry it.",
            examples=["russia-cuba-contacts"],
        ),
    ]
    title: Annotated[str, Field(min_length=1, title="Title", description="One line for people.")]
    description: Annotated[
        str, Field(title="Description", description="What the rule is for, and what it is not.")
    ] = ""
    examples: Annotated[
        Examples,
        Field(
            description=(
                "Items the rule must match and must not match, a few words each: "
                "`monitor check` runs them and explains each one that fails."
            ),
        ),
    ] = Examples()
    severity: Annotated[
        Severity, Field(title="Severity", description="low, medium, high or critical.")
    ] = "medium"
    feeds: Annotated[
        list[str],
        Field(
            title="Feeds",
            description=(
                "Only items from these feed URLs (glob patterns allowed: "
                "`https://*.example.org/*`) or from the feeds with a tag (`tag:state-media`). "
                "Empty: every feed."
            ),
        ),
    ] = []
    lang: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]],
        Field(
            title="Languages",
            description=(
                "Only items in these languages (`[es, ru]`): the feed's or the document's "
                "declared language, else the one py3langid identifies. Empty: every language."
            ),
        ),
    ] = []
    fields: Annotated[
        list[FieldName],
        Field(
            min_length=1,
            title="Fields",
            description="Which fields of an item to search. Default: all four.",
        ),
    ] = ["title", "summary", "content", "tags"]
    max_alerts: Annotated[
        str | None,
        Field(
            pattern=BUDGET_PATTERN,
            title="Alert budget",
            description=(
                "At most this many alerts of the rule a webhook gets one by one in any window "
                "(`20/1h`); the rest wait and go out together as one `alert.digest` when the "
                "window allows. Alerts of a webhook's `urgent` severity are never held."
            ),
            examples=["20/1h", "5/10m"],
        ),
    ] = None
    match: Annotated[
        Node,
        Field(
            title="Match",
            description="The condition an item must meet: a term, `$set`, or a group.",
        ),
    ]
    fulltext: Annotated[
        bool,
        Field(
            title="Full text",
            description=(
                "Read the article page of an item that passes `prefilter` but not `match`: "
                "the page at the item's link is fetched and its main text matched as the "
                'field `content` (docs/rules.md, "Full text").'
            ),
        ),
    ] = False
    prefilter: Annotated[
        Node | None,
        Field(
            title="Prefilter",
            description=(
                "With full text (this rule's `fulltext` or its feed's): the condition the "
                "feed's own text must meet for the page to be fetched. Default: at least one "
                "of the parts `match` requires occurs, and `match` requires two or more."
            ),
        ),
    ] = None


# the pattern is for editors (JSON Schema); validation says it in words (`_set_names`)
SetName = Annotated[str, WithJsonSchema({"type": "string", "pattern": SET_NAME_PATTERN})]


class RuleFile(BaseModel):
    """A rule file: named term sets and the rules that use them."""

    model_config = ConfigDict(
        extra="forbid",
        title="monitor rule file",
        json_schema_extra={"$comment": "The rule language is documented in docs/rules.md."},
    )

    version: Annotated[
        Literal[1], Field(title="Version", description="Format version of this file: 1.")
    ] = 1
    shared: Annotated[
        bool,
        Field(
            title="Shared",
            description=(
                "true: this file's term sets serve the rules of every file, and the file holds "
                "no rules. false (the default): its sets are its own rules' only."
            ),
        ),
    ] = False
    terms: Annotated[
        dict[SetName, list[TermEntry]],
        AfterValidator(_set_names),
        Field(
            title="Term sets",
            description=(
                "Named lists of terms; a rule refers to one as `$name`. A set may include "
                "another set. A set serves the rules of its own file, unless the file is "
                "`shared: true`."
            ),
        ),
    ] = {}
    rules: Annotated[list[Rule], Field(title="Rules")] = []


Group.model_rebuild()
Condition.model_rebuild()
