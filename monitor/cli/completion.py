"""Shell completion: commands, options, and the config's own rule ids and webhook names.

argcomplete completes from the real parser at the moment TAB is pressed: the shell function
`monitor completion bash` prints runs `monitor` with the line in `COMP_LINE`, `complete` answers
and the process exits before any command runs. Being dynamic is why it is argcomplete and not
shtab's static scripts: `--rule <TAB>` lists the rule ids of the config folder on that command
line (`--config DIR`, default ./config) as they are now, and a new command or option needs no
script regenerated.

Names are read straight from the YAML (webhooks[].name, each rule file's rules[].id), without
validating or compiling anything: completion stays quick, and it works while a rule file is
being edited and does not validate yet.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from monitor.config.settings import CONFIG_FILE, MonitorConfig

SHELLS = ("bash", "zsh", "fish")
RULE_OPTIONS = {"--rule"}
WEBHOOK_OPTIONS = {"--webhook", "--enable"}


def register(sub: Any) -> None:
    """`monitor completion SHELL`."""
    parser = sub.add_parser(
        "completion",
        help="print the shell code that completes monitor's commands, options, rule ids and "
        "webhook names",
        description="Print the code that makes your shell complete `monitor`: its commands and "
        "options, and the rule ids (--rule) and webhook names (--webhook, --enable) of the "
        "config given with --config (default ./config), read when you press TAB. Load it in "
        'your shell\'s start-up file: bash: eval "$(monitor completion bash)" in ~/.bashrc; '
        'zsh: eval "$(monitor completion zsh)" in ~/.zshrc, after compinit; fish: monitor '
        "completion fish | source in ~/.config/fish/config.fish. Exit codes: 0.",
    )
    parser.add_argument("shell", choices=SHELLS, help="the shell to print the code for")
    parser.set_defaults(handler=lambda args: print_shellcode(args.shell))


def print_shellcode(shell: str) -> int:
    from argcomplete.shell_integration import shellcode  # noqa: PLC0415 - only this command

    sys.stdout.write(shellcode(["monitor"], shell=shell))
    return 0


def attach(parser: argparse.ArgumentParser) -> None:
    """Give every --rule option the config's rule ids to complete, every --webhook and --enable
    its webhook names, every --config the folders: wherever a command defines them."""
    for action in _actions(parser):
        options = set(action.option_strings)
        if options & RULE_OPTIONS:
            action.completer = rule_ids  # type: ignore[attr-defined]
        elif options & WEBHOOK_OPTIONS:
            action.completer = webhook_names  # type: ignore[attr-defined]
        elif "--config" in options:
            action.completer = _directories  # type: ignore[attr-defined]


def complete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell and exit when this process was started to complete a line; else
    return at once (argcomplete is not even imported)."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    from argcomplete import io as completion_io  # noqa: PLC0415 - only when completing
    from argcomplete.finders import CompletionFinder  # noqa: PLC0415

    class Finder(CompletionFinder):
        def _init_debug_stream(self) -> None:
            # argcomplete's default writes to file descriptor 9 when it is open: in a process
            # that did not get it from the shell (a test's), that is someone else's file
            completion_io.debug_stream = sys.stderr

    answer_file = os.environ.get("_ARGCOMPLETE_STDOUT_FILENAME")
    if answer_file is None:  # the shell reads the answer on file descriptor 8
        Finder()(parser, exit_method=sys.exit)
        return
    with Path(answer_file).open("w", encoding="utf-8") as answer:  # closed by the exit
        Finder()(parser, exit_method=sys.exit, output_stream=answer)


def rule_ids(parsed_args: argparse.Namespace, **_: object) -> list[str]:
    """The `id` of every rule in the rule files of the config folder."""
    document = _config_document(parsed_args)
    folder = _config_folder(parsed_args)
    target = folder / str(document.get("rules") or MonitorConfig.model_fields["rules"].default)
    files = [target] if target.is_file() else _yaml_files(target)
    found: list[str] = []
    for path in files:
        rules = _read(path).get("rules")
        if isinstance(rules, list):
            found.extend(str(r["id"]) for r in rules if isinstance(r, dict) and "id" in r)
    return sorted(set(found))


def webhook_names(parsed_args: argparse.Namespace, **_: object) -> list[str]:
    """The `name` of every webhook in monitor.yaml."""
    hooks = _config_document(parsed_args).get("webhooks")
    if not isinstance(hooks, list):
        return []
    return sorted({str(h["name"]) for h in hooks if isinstance(h, dict) and "name" in h})


def _directories(prefix: str, **_: object) -> list[str]:
    from argcomplete.completers import DirectoriesCompleter  # noqa: PLC0415 - when completing

    return list(DirectoriesCompleter()(prefix))


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:  # argparse keeps no public list of them
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _actions(child)


def _config_folder(parsed_args: argparse.Namespace) -> Path:
    return Path(getattr(parsed_args, "config", None) or "config")


def _config_document(parsed_args: argparse.Namespace) -> dict[str, Any]:
    return _read(_config_folder(parsed_args) / CONFIG_FILE)


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _read(path: Path) -> dict[str, Any]:
    """The file's mapping; empty when it is missing or is not YAML (yet): nothing to offer."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return document if isinstance(document, dict) else {}
