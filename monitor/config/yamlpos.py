"""YAML read with positions, so every config problem can say `PATH:LINE:COL`.

PyYAML composes a node tree that knows where each node starts; we build plain Python data from it
and keep, for every location (a tuple of keys and indexes, the same shape as a pydantic error's
`loc`), where its value and its key start. `${NAME}` in string values is replaced here, where the
position of a missing variable is still known. Duplicate keys, which PyYAML accepts silently, are
reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

Loc = tuple[str | int, ...]
# libyaml's parser, when PyYAML was built with it, composes the same nodes with the same marks
# ~5x faster: a config of 1,000 feeds took 0.3 s to read with the pure-Python one
_NodeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# where a missing variable may stand in: the placeholder for a value at `loc` that is exactly
# `${NAME}` (`whole`) or only contains it, or None when the variable is needed to load at all
Placeholder = Callable[[Loc, bool], str | None]


@dataclass(frozen=True, slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class PositionedDocument:
    """Plain data from one YAML file, with where each part of it starts."""

    path: Path
    data: object
    values: dict[Loc, Position] = field(default_factory=dict)
    keys: dict[Loc, Position] = field(default_factory=dict)
    problems: list[tuple[Position, str]] = field(default_factory=list)
    # variables that were not set where a placeholder stood in: warnings, not problems
    unset: list[tuple[Position, str]] = field(default_factory=list)

    def position_of(self, loc: Loc, *, prefer_key: bool = False) -> Position:
        """Where `loc` is, or its nearest ancestor that exists (for missing keys)."""
        current = tuple(loc)
        while True:
            if prefer_key and current in self.keys:
                return self.keys[current]
            if current in self.values:
                return self.values[current]
            if not current:
                return Position(1, 1)
            current = current[:-1]


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(
        self,
        document: PositionedDocument,
        environ: Mapping[str, str],
        placeholder: Placeholder | None = None,
    ) -> None:
        self.document = document
        self.environ = environ
        self.placeholder = placeholder
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, loc: Loc) -> object:
        self.document.values[loc] = _position(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*loc, index)) for index, child in enumerate(node.value)]
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return self._substitute(value, node, loc)
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[object, object]:
        result: dict[object, object] = {}
        for key_node, value_node in node.value:
            key = self.constructor.construct_object(key_node, deep=True)
            if (
                not isinstance(key, str | int | bool | float)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                self.document.problems.append(
                    (_position(key_node), f"unsupported key {key_node.value!r}")
                )
                continue
            if key in result:
                self.document.problems.append((_position(key_node), f"duplicate key {key!r}"))
                continue
            child: Loc = (*loc, key if not isinstance(key, bool | float) else str(key))
            self.document.keys[child] = _position(key_node)
            result[key] = self.build(value_node, child)
        return result

    def _substitute(self, text: str, node: yaml.Node, loc: Loc) -> str:
        whole = _ENV_REF.fullmatch(text) is not None

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.environ:
                return self.environ[name]
            message = f"environment variable {name} is not set"
            stand_in = self.placeholder(loc, whole) if self.placeholder else None
            if stand_in is not None:
                self.document.unset.append((_position(node), message))
                return stand_in
            self.document.problems.append((_position(node), message))
            return ""

        return _ENV_REF.sub(replace, text)


# PyYAML's problems, in words that say what to change; matched on the start of its message
_SYNTAX_WORDS: tuple[tuple[str, str], ...] = (
    (
        "expected <block end>",
        "this line is not indented like the lines around it: the items of "
        "one list or mapping start in the same column",
    ),
    (
        "did not find expected key",
        "this line is not indented like the lines around it: the "
        "keys of one mapping start in the same column",
    ),
    (
        "did not find expected '-' indicator",
        "a list item here: it starts with `- `, in the column of the items before it",
    ),
    ("found character '\\t' that cannot start any token", "a tab: YAML indents with spaces only"),
    (
        "mapping values are not allowed here",
        "a `: ` where no mapping can start: quote a value "
        'that contains `: ` ("Cuba: the island"), or look for a missing `:` or a deeper indent '
        "on the line above",
    ),
    ("could not find expected ':'", "a key without its `:` (write `key: value`)"),
    ("expected ',' or ']'", "a `[` list that is not closed, or a missing `,` between its items"),
    ("expected ',' or '}'", "a `{` mapping that is not closed, or a missing `,` between its items"),
    ("found unexpected end of stream", "a quote that is never closed"),
    (
        "found undefined alias",
        "YAML reads a value that starts with `*` as an alias: put the value in quotes ('*…')",
    ),
    (
        "found unknown escape character",
        "an unknown `\\` escape in a double-quoted value: use single quotes, or write `\\\\`",
    ),
    ("but found another document", "a second document (`---`): a config file holds one"),
    (
        "expected alphabetic or numeric character",
        "YAML reads a value that starts with `&` or `*` "
        "as an anchor or alias: put the value in quotes",
    ),
    ("found duplicate anchor", "an anchor (`&name`) defined twice"),
)
_CANNOT_START = re.compile(r"found character '(.)' that cannot start any token")


def syntax_error(exc: yaml.MarkedYAMLError) -> tuple[Position, str]:
    """Where a YAML syntax error is, and what it means in words."""
    problem = exc.problem or exc.context or "not valid YAML"
    mark = exc.problem_mark or exc.context_mark
    if "end of stream" in problem and exc.context_mark is not None:
        mark = exc.context_mark  # where the unclosed quote or bracket opened
    where = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
    for start, words in _SYNTAX_WORDS:
        if problem.startswith(start):
            opened = exc.context_mark
            if start.startswith("expected ','") and opened is not None:
                return where, f"{words} (it opens on line {opened.line + 1})"
            return where, words
    if (cannot := _CANNOT_START.match(problem)) is not None:
        return where, f"'{cannot.group(1)}' cannot start a plain value: put the value in quotes"
    return where, f"not valid YAML here ({problem})"


def excerpt(text: str, where: Position) -> str:
    """The line at `where`, and a caret under its column, for a message's last lines."""
    lines = text.splitlines()
    if not 1 <= where.line <= len(lines):
        return ""
    line = lines[where.line - 1].replace("\t", " ")
    number = str(where.line)
    gutter = " " * len(number)
    return f"\n    {number} | {line}\n    {gutter} | {' ' * (where.column - 1)}^"


def variables_in(text: str) -> set[str]:
    """The names of the `${NAME}` references written in `text`."""
    return set(_ENV_REF.findall(text))


def load_plain(text: str) -> object:
    """Plain data, without positions, parsed as `load_positioned` parses (for lenient readers)."""
    return yaml.load(text, Loader=_NodeLoader)  # noqa: S506 - a safe loader either way


def _compose(text: str, loader_class: type[yaml.SafeLoader]) -> yaml.Node | None:
    loader = loader_class(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load_positioned(
    path: Path, environ: Mapping[str, str] | None = None, placeholder: Placeholder | None = None
) -> PositionedDocument:
    """Read one YAML file. Syntax errors and duplicate keys land in `problems`, never raise.
    `placeholder`: where a missing `${NAME}` may stand in (a warning in `unset`) rather than
    be a problem."""
    document = PositionedDocument(path=path, data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        document.problems.append((Position(0, 0), f"cannot read: {exc}"))
        return document
    try:
        node = _compose(text, _NodeLoader)
    except yaml.YAMLError:
        # libyaml's messages are terser (a tab is "a character that cannot start any token")
        # and its reader errors point at bytes: the error path asks PyYAML's own parser
        try:
            node = _compose(text, yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            where, words = syntax_error(exc)
            shown = f"invalid YAML: {words}{excerpt(text, where)}"
            document.problems.append((where, shown))
            return document
        except yaml.YAMLError as exc:
            document.problems.append((Position(1, 1), f"invalid YAML: {exc}"))
            return document
    if node is None:
        document.data = {}
        return document
    builder = _Builder(document, os.environ if environ is None else environ, placeholder)
    document.data = builder.build(node, ())
    return document
