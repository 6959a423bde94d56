"""The sandbox `json` templates run in, with their size limits enforced while they run.

Jinja2's immutable sandbox keeps templates away from Python's internals; it does not bound what
a template builds. Here every value that passes a hook is bounded: `*`, `**` and `%` are checked
before they compute (`'x' * 10**8`, `'%0100000000d' % 1` are refused without building them),
and so is the `format` filter's format; calls and filters are
refused a value over the size limit, or a width or count over it (`center`, `indent`,
`wordwrap`, …: SIZED), and checked on their result; attributes and items are checked as they
are read; `range` is the sandbox's (at most 100,000 items); and the output is streamed and
stopped at MAX_OUTPUT. Time and memory are bounded by the process that renders
(monitor.delivery.template_worker): a nested loop that produces nothing passes no hook at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache, wraps
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from monitor.delivery.text import clip

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.runtime import Context

MAX_OUTPUT = 1_000_000  # characters of the rendered body
MAX_VALUE = MAX_OUTPUT  # characters (or items) of any value a template builds
MAX_POWER_BITS = 4_096  # the size of an integer `**` may produce


class TemplateLimit(Exception):  # noqa: N818 - a limit, not a bug: its message names the limit
    """A template went over one of the limits (its message says which)."""


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict | set) else 0


def _bounded(value: object, what: str) -> object:
    if _size(value) > MAX_VALUE:
        raise TemplateLimit(f"{what} builds a value over {MAX_VALUE} characters or items")
    return value


# the calls and filters whose integer arguments are sizes of what they build (widths, counts)
SIZED = frozenset(
    {"center", "ljust", "rjust", "zfill", "expandtabs", "indent", "wordwrap", "truncate"}
    | {"batch", "slice", "format", "range", "join"}
)


def _check_args(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    for value in (*args, *kwargs.values()):
        sized = name in SIZED and isinstance(value, int) and not isinstance(value, bool)
        if sized and value > MAX_VALUE:
            raise TemplateLimit(f"{what} is given {value}, over the limit of {MAX_VALUE}")
        if _size(value) > MAX_VALUE:
            raise TemplateLimit(f"{what} is given a value over {MAX_VALUE} characters or items")


# a printf-style conversion's width and precision (`%-010.3f`, `%(name)5s`, `%*d`)
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_printf(fmt: object, values: object, what: str) -> None:
    """A width or precision over MAX_VALUE, in the format or (`*`) among its values, is refused
    before formatting: `'%0100000000d' % 1` builds a value of that width from a short source,
    and Jinja2 evaluates constant expressions when it compiles (a config's validation), not
    only in the worker that renders."""
    if not isinstance(fmt, str) or "%" not in fmt:
        return
    specs = _PRINTF_SPEC.findall(fmt)
    sizes = [int(n) for spec in specs for n in spec if n.isdigit()]
    if any("*" in spec for spec in specs):
        given = values if isinstance(values, tuple | list) else (values,)
        sizes += [v for v in given if isinstance(v, int) and not isinstance(v, bool)]
    if sizes and max(sizes) > MAX_VALUE:
        raise TemplateLimit(f"{what} would build a value over {MAX_VALUE} characters")


def _power_bits(base: object, exponent: object) -> int:
    if not isinstance(base, int) or not isinstance(exponent, int) or exponent <= 0:
        return 0
    return abs(base).bit_length() * exponent if abs(base) > 1 else 0


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, refusing to build values over MAX_VALUE."""

    # intercepted operators are also never folded when the template compiles
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            count = right if isinstance(right, int) else left if isinstance(left, int) else 1
            if max(_size(left), _size(right)) * max(count, 0) > MAX_VALUE:
                raise TemplateLimit(f"`*` would build a value over {MAX_VALUE} characters")
        elif operator == "%":
            _check_printf(left, right, "`%`")
        elif _power_bits(left, right) > MAX_POWER_BITS:
            raise TemplateLimit(f"`**` would build a number over {MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _bounded(super().getattr(obj, attribute), f"`.{attribute}`")

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _bounded(super().getitem(obj, argument), "`[…]`")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        name = _name_of(__obj)
        what = f"`{name}`"
        _check_args(name, args, kwargs, what)
        if getattr(__obj, "__name__", None) == "replace" and len(args) >= 2:
            _check_replace(getattr(__obj, "__self__", None), args[0], args[1])
        return _bounded(super().call(__context, __obj, *args, **kwargs), what)


def _name_of(function: object) -> str:
    name = getattr(function, "__name__", None) or getattr(function, "name", None) or "a call"
    return "range" if name == "safe_range" else str(name)  # a macro has a `name`


def _check_replace(text: object, old: object, new: object) -> None:
    """str.replace multiplies: `s.replace('', s)` is len(s) squared; refused before it runs."""
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = len(text) + 1 if not old else text.count(old)
        if len(text) + count * (len(new) - len(old)) > MAX_VALUE:
            raise TemplateLimit(f"`replace` would build a value over {MAX_VALUE} characters")


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # functools.wraps copies `jinja_pass_arg`, so filters taking the context still get it
    skip = 1 if hasattr(function, "jinja_pass_arg") else 0  # the context, environment, …

    @wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        given = args[skip:]
        _check_args(name, given, kwargs, f"filter `{name}`")
        if name == "replace" and len(given) >= 3:
            _check_replace(str(given[0]), given[1], given[2])
        if name == "format" and given:
            _check_printf(given[0], given[1:], f"filter `{name}`")
        return _bounded(function(*args, **kwargs), f"filter `{name}`")

    return bounded


def _clip(value: object, limit: int = 200) -> str:
    return clip(str(value), limit)


@lru_cache(maxsize=64)
def compile_template(source: str) -> Template:
    """The template compiled in the sandbox; ValueError (a config error) if it does not parse."""
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False)
    env.filters["clip"] = _clip
    env.filters = {name: _bounded_filter(name, f) for name, f in env.filters.items()}
    try:
        return env.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        raise ValueError(f"template does not compile{where}: {exc.message}") from None


def render_text(source: str, context: Mapping[str, object]) -> str:
    """The template's output, streamed and stopped at MAX_OUTPUT characters (TemplateLimit)."""
    parts: list[str] = []
    produced = 0
    for chunk in compile_template(source).generate(**context):
        produced += len(chunk)
        if produced > MAX_OUTPUT:
            raise TemplateLimit(f"output over {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)
