"""Every hint monitor prints names a command that exists: each `monitor COMMAND --option …` in
a message, a log line or a help text of the package is checked against the real parser."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import monitor
from monitor.cli.main import build_parser

PACKAGE = Path(monitor.__file__).parent
HINTS = (
    re.compile(r"`monitor ([^`]+)`"),  # how hints are written
    re.compile(r"(?<!`)\bmonitor ([a-z][a-z-]*(?: --?[a-z][a-z-]*)+)"),  # a command and options
)
PLACEHOLDER = "{}"  # where an f-string puts a value (a name, an id)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings: they are for readers of the code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(part) or PLACEHOLDER for part in node.values)
    return None


def _strings(path: Path) -> Iterator[tuple[int, str]]:
    """The string literals of a module that its users may see, implicit joins joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    inner = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(tree):
        if id(node) in skip or id(node) in inner:
            continue
        text = _text(node)
        if text is not None:
            yield node.lineno, text


def hints() -> list[tuple[str, str]]:
    """(where, the words after `monitor`) for every backticked command in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _strings(path):
            for pattern in HINTS:
                for match in pattern.finditer(text):
                    found.append((f"{path.relative_to(PACKAGE.parent)}:{line}", match.group(1)))
    return found


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def problem(words: str, parser: argparse.ArgumentParser) -> str | None:
    """Why `monitor WORDS` is not a command line of `parser`; None when it is one."""
    tokens = words.replace("…", " ").split()
    options = set(parser._option_string_actions)
    while tokens and tokens[0].startswith("-"):  # options before the command: --log-level …
        option = tokens.pop(0).split("=")[0]
        if option not in options:
            return f"no global option {option}"
        if parser._option_string_actions[option].nargs != 0 and tokens:
            tokens.pop(0)
    if not tokens:
        return None
    commands = _commands(parser)
    if tokens[0] not in commands:
        return f"no command {tokens[0]!r}"
    command = commands[tokens[0]]
    for token in tokens[1:]:
        option = token.split("=")[0].strip("[](),|")
        if option.startswith("-") and option not in command._option_string_actions:
            return f"`monitor {tokens[0]}` has no option {option}"
    return None


def test_the_hints_are_found() -> None:
    """The scan sees the hints known to be there, so the next test cannot pass on none."""
    found = {words for _where, words in hints()}
    assert "webhooks --enable {}" in found  # replay's note on a disabled webhook
    assert any(words.startswith("run --once") for words in found)
    assert len(found) >= 5


@pytest.mark.parametrize(("where", "words"), hints())
def test_every_hint_names_a_command_and_options_that_exist(where: str, words: str) -> None:
    assert problem(words, build_parser()) is None, f"{where}: `monitor {words}`"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("webhooks --enable NAME", None),
        ("--log-format json run --once", None),
        ("alerts --state failed", None),
        ("webhook --enable NAME", "no command 'webhook'"),
        ("alerts --webhooks X", "`monitor alerts` has no option --webhooks"),
        ("--verbose run", "no global option --verbose"),
    ],
)
def test_the_check_itself_tells_real_commands_from_others(words: str, expected: str | None) -> None:
    assert problem(words, build_parser()) == expected
