"""Adding entries to a config file's `feeds:` list as text, so the rest of the file is untouched.

A YAML round trip through a library re-emits the whole file: quoting, indentation, blank lines
and comment placement come back its way. Here the file's own lines stay byte for byte; the new
entries are lines inserted after the last entry of the block list (in its indentation), under a
`feeds:` key that has no value yet, or in a new `feeds:` block at the end. PyYAML's node marks say
where the list ends; the result is read back and must hold the old entries then the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FeedListError(ValueError):
    """The file's `feeds:` is not a list new entries can be added to (the message says why)."""


def append_feeds(text: str, entries: Sequence[Mapping[str, object]]) -> str:
    """`text` with `entries` added at the end of its top-level `feeds:` block list."""
    if not entries:
        return text
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise FeedListError(f"not valid YAML: {exc}") from None
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise FeedListError("the file is not a mapping of keys")
    key, value = _feeds_node(root)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    if key is None or value is None:  # no `feeds:` at all: a new block at the end
        edited = "".join(lines) + "feeds:\n" + _entry_lines(entries, 2)
    elif isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null"):
        at = key.end_mark.line + 1  # `feeds:` with nothing after it
        edited = "".join([*lines[:at], _entry_lines(entries, 2), *lines[at:]])
    elif isinstance(value, yaml.SequenceNode) and not value.flow_style and value.value:
        edited = _after_last(lines, value, entries)
    elif isinstance(value, yaml.SequenceNode) and not value.value:  # `feeds: []`
        head = lines[key.start_mark.line]
        end = value.end_mark.column if value.end_mark.line == key.start_mark.line else None
        if end is None:
            raise FeedListError("`feeds: [` spans several lines: write it as a block list")
        replaced = head[: value.start_mark.column].rstrip() + head[end:]
        at = key.start_mark.line
        block = _entry_lines(entries, 2)
        edited = "".join([*lines[:at], replaced, block, *lines[at + 1 :]])
    else:
        raise FeedListError(
            "`feeds:` is written in flow style ([…]): write it as a block list (`- url: …`) to "
            "import into it"
        )
    _check(text, edited, entries)
    return edited


def _feeds_node(root: yaml.Node | None) -> tuple[yaml.Node | None, yaml.Node | None]:
    if root is None:
        return None, None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "feeds":
            return key, value
    return None, None


def _after_last(
    lines: list[str], sequence: yaml.SequenceNode, entries: Sequence[Mapping[str, object]]
) -> str:
    """New entries after the list's last entry, at the column of its dashes."""
    first = sequence.value[0]
    dash = lines[first.start_mark.line].rfind("-", 0, first.start_mark.column + 1)
    if dash < 0:
        raise FeedListError("cannot find where the `feeds:` entries start")
    at = _end_line(sequence.value[-1])
    return "".join([*lines[:at], _entry_lines(entries, dash), *lines[at:]])


def _end_line(node: yaml.Node) -> int:
    """The index of the line after the node's last value. A block collection's own end mark is
    where the next token starts, past any comment lines that follow (they belong to what comes
    next), so its last value is asked; a scalar's or a flow collection's mark is exact, at the
    start of the next line when a newline closed it (a block scalar)."""
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and not node.flow_style:
        children = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children:
            return max(_end_line(child) for child in children)
    mark = node.end_mark
    return mark.line if mark.column == 0 else mark.line + 1


def _entry_lines(entries: Sequence[Mapping[str, object]], indent: int) -> str:
    pad = " " * indent
    out: list[str] = []
    for entry in entries:
        for position, (name, value) in enumerate(entry.items()):
            lead = f"{pad}- " if position == 0 else f"{pad}  "
            out.append(f"{lead}{name}: {_scalar(value)}\n")
    return "".join(out)


def _scalar(value: object) -> str:
    """A value as YAML on one line: plain where YAML reads it back as the same string, else a
    double-quoted (JSON) string; a list in flow style."""
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(item) for item in value) + "]"
    text = str(value)
    try:
        plain_ok = yaml.safe_load(text) == text and not text.startswith(("[", "{", "&", "*"))
    except yaml.YAMLError:
        plain_ok = False
    if plain_ok and "#" not in text and ": " not in text and text == text.strip():
        return text
    return json.dumps(text, ensure_ascii=False)


def _check(before: str, after: str, entries: Sequence[Mapping[str, object]]) -> None:
    """The edit read back: the old feeds, then exactly the new ones; everything else equal."""
    old: Any = yaml.load(before, Loader=_Loader) or {}  # noqa: S506 - a SafeLoader (libyaml's)
    new: Any = yaml.load(after, Loader=_Loader) or {}  # noqa: S506 - a SafeLoader (libyaml's)
    expected = [*(old.get("feeds") or []), *[dict(entry) for entry in entries]]
    rest_old = {k: v for k, v in old.items() if k != "feeds"}
    rest_new = {k: v for k, v in new.items() if k != "feeds"}
    if new.get("feeds") != expected or rest_old != rest_new:
        raise FeedListError("the edit would not read back as intended; the file is unchanged")
