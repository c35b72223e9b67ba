"""Template text before the parser: tokens, escapes and located errors.

``${name}`` tokens are replaced and escapes resolved *before* dynamicprompts
parses, so a token's value can sit inside a variant. Characters meant
literally (a token's braces, an escaped ``\\{``, a lone ``$``, ``#``, ``%``)
travel through the parser as private-use stand-ins and are restored in the
finished prompt. Each prepared character remembers where it came from, so
an error, found before or during parsing, points at the user's own text
with a line, a column and a caret.
"""
from collections.abc import Mapping
import dataclasses
import re
from typing import Any

from dynamicprompts.commands import Command, LiteralCommand
from dynamicprompts.parser.parse import parse
from pyparsing import ParseBaseException

from factory.parameters.schema import ParameterError, check_text


class PromptError(ParameterError):
    """A template, token or wildcard problem; the message says where."""


# Literal characters travel through the parser as private-use stand-ins.
_PROTECTED = "{}|$#%_"
_STAND_IN = {ord(c): 0xE000 + ord(c) for c in _PROTECTED}
_RESTORE = {v: k for k, v in _STAND_IN.items()}
_LITERAL = {k: v for k, v in _STAND_IN.items() if k != ord("_")}
_SCAN = re.compile(
    r"\\(?P<escaped>[{}|_])"
    r"|(?P<bound>\{\s*[~!@]?\s*(?:\d+-?\d*|-\d+)\$\$(?:[^${}]+\$\$)?)"
    r"|\$\{(?P<token>[^{}$]*)\}|(?P<unclosed>\$\{)|(?P<dollar>\$\$?)"
    r"|(?P<literal>[#%])|(?P<brace>[{}|])"
    r"|(?P<reserved>[" + "".join(map(chr, _RESTORE)) + "])"
)
_PLAIN = re.compile(r"\$\$|\$\{(?P<token>[^{}$]*)\}|(?P<unclosed>\$\{)")
_NAME = re.compile(r"\s*([A-Za-z_][\w-]*)\s*")


def _literal(text: str) -> str:
    """Text the parser passes through untouched."""
    # Single underscores stay, so '__${name}__' can still name a wildcard.
    text = re.sub(r"_{2,}", lambda m: m.group().translate(_STAND_IN), text)
    return text.translate(_LITERAL)


def restore(text: str) -> str:
    """Parser output with the stand-ins turned back into what was written."""
    return text.translate(_RESTORE)


class PreparedText:
    """Prepared template text, each character mapped to its original index."""

    def __init__(self, raw: str, where: str) -> None:
        self.raw, self.where = raw, where
        self.parts: list[str] = []
        self.origins: list[int] = []

    def add(self, text: str, origin: int, spread: bool = False) -> None:
        self.parts.append(text)
        step = 1 if spread else 0
        self.origins.extend(origin + i * step for i in range(len(text)))

    def error(self, index: int, reason: str) -> PromptError:
        """A PromptError pointing at ``index`` of the original text."""
        start = self.raw.rfind("\n", 0, index) + 1
        end = len(self.raw) if "\n" not in self.raw[index:] else (
            self.raw.index("\n", index))
        column = index - start + 1
        place = f"column {column}"
        if "\n" in self.raw:
            place = f"line {self.raw.count(chr(10), 0, index) + 1}, {place}"
        return PromptError(f"{self.where}, {place}: {reason}\n"
                           + _excerpt(self.raw[start:end], column - 1))

    def prepared_error(self, index: int, reason: str) -> PromptError:
        origin = self.origins[index] if index < len(self.origins) else None
        return self.error(len(self.raw) if origin is None else origin, reason)


def _excerpt(line: str, offset: int, width: int = 40) -> str:
    """The line around ``offset`` with a caret under it, long lines cut."""
    left = max(0, offset - width)
    head = "..." if left else ""
    tail = "..." if len(line) > offset + width else ""
    caret = " " * (len(head) + offset - left) + "^"
    return f"  {head}{line[left:offset + width]}{tail}\n  {caret}"


def _token(body: str, tokens: Mapping[str, Any], source: PreparedText,
           index: int) -> str:
    name = _NAME.fullmatch(body)
    if name is None:
        raise source.error(index, f"'${{{body}}}' is not a token; write "
                                  "${name}, or $$ for a literal '$'")
    if name.group(1) not in tokens:
        known = ", ".join(sorted(tokens)) or "none"
        raise source.error(index, f"undefined token ${{{name.group(1)}}}; "
                                  f"defined tokens: {known}")
    return str(tokens[name.group(1)])


def _piece(match: re.Match, tokens: Mapping[str, Any],
           source: PreparedText) -> str:
    """What one scanned piece of a template becomes before parsing."""
    kind, text = match.lastgroup, match.group()
    if kind == "token":
        return _literal(_token(match["token"], tokens, source, match.start()))
    if kind == "unclosed":
        raise source.error(match.start(), "'${' is never closed with '}'")
    if kind == "reserved":
        raise source.error(match.start(), f"character U+{ord(text):04X} "
                                          "cannot be used in a template")
    if kind == "escaped":  # '_' too: escaped underscores never open a wildcard
        return text[-1].translate(_STAND_IN)
    if kind in ("dollar", "literal"):
        return _literal(text[-1])
    return text


@dataclasses.dataclass
class _Brace:
    index: int
    plain: bool = True


def _track(braces: list[_Brace], match: re.Match,
           source: PreparedText) -> None:
    """Refuse unbalanced braces and braces the parser would drop."""
    char = match.group()[0]
    if match.lastgroup not in ("bound", "brace"):
        return
    if char == "{":
        if braces:
            braces[-1].plain = False
        braces.append(_Brace(match.start(), match.lastgroup == "brace"))
    elif char == "|" and braces:
        braces[-1].plain = False
    elif char == "}":
        if not braces:
            raise source.error(match.start(), "'}' has no matching '{' "
                                              "(write \\} for a literal '}')")
        brace = braces.pop()
        inner = source.raw[brace.index + 1:match.start()]
        if brace.plain and "__" not in inner:
            raise source.error(brace.index, f"braces around {inner!r} hold one "
                               "option and would vanish; write \\{ and \\} for "
                               "literal braces, or '|' between options")


def prepare(text: str, tokens: Mapping[str, Any], where: str) -> PreparedText:
    """Resolve tokens and escapes into text the library reads as meant.

    Every template passes here (a prompt, a swept prompt, a wildcard
    value), so control characters are refused here once for all of them.
    """
    check_text(text, where)
    source, braces, done = PreparedText(text, where), [], 0
    for match in _SCAN.finditer(text):
        source.add(text[done:match.start()], done, spread=True)
        piece = _piece(match, tokens, source)
        source.add(piece, match.start(), spread=match.lastgroup == "bound")
        _track(braces, match, source)
        done = match.end()
    source.add(text[done:], done, spread=True)
    if braces:
        raise source.error(braces[-1].index, "'{' is never closed "
                                             "(write \\{ for a literal '{')")
    return source


def parse_prepared(source: PreparedText) -> Command:
    """The parsed template; a syntax error points at the original text."""
    prepared = "".join(source.parts)
    if "{" not in prepared and "__" not in prepared:
        return LiteralCommand(prepared)  # the parser would return the same
    try:
        return parse(prepared)
    except ParseBaseException as exc:
        found = prepared[exc.loc:exc.loc + 2]
        reason = ("'__' opens a wildcard that is never closed with '__'"
                  if found == "__" else f"cannot read the template here "
                  f"({exc.msg})")
        raise source.prepared_error(exc.loc, reason) from None


def interpolate(text: str, tokens: Mapping[str, Any],
                field: str = "text") -> str:
    """Replace ``${name}`` tokens in a plain string; ``$$`` is a '$'."""
    source = PreparedText(text, field)

    def replace(match: re.Match) -> str:
        if match["unclosed"]:
            raise source.error(match.start(), "'${' is never closed with '}'")
        if match["token"] is None:
            return "$"
        return _token(match["token"], tokens, source, match.start())

    return _PLAIN.sub(replace, text)
