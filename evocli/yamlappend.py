"""Appending turns to a YAML conversation's text: a textual insertion that keeps every existing
byte, checked by loading the result again (pure)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evocli import yamlsafe
from evocli.conversation import _Document, _load, _pairs, _validate
from evocli.errors import EvocliError, ExitCode, InputError
from evocli.messages import Message

if TYPE_CHECKING:
    import yaml

# YAML's printable characters, minus the ones a literal block would turn into line breaks.
_LITERAL_SAFE = re.compile(
    "[\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*\\Z"
)
_NO_WRAP = 1 << 30


class AppendError(EvocliError):
    """The new turns could not be written into the file's text without changing its data."""

    code = ExitCode.NOINPUT  # like every other failure to save into FILE


def append_turns(text: str, name: str, turns: Sequence[Message]) -> tuple[str, bool]:
    """The file's text with `turns` added to its messages, and whether the old text was kept.

    The turns are inserted as text after the last message (or as a new messages: key), so
    comments, quoting and order stay byte for byte. Every candidate is reloaded and must hold
    exactly the old data plus the new turns; only when no insertion passes is the document
    written out afresh (False), which keeps the data but not the comments.
    """
    doc = _load(text, name)
    _validate(doc)
    expected = _with_turns(doc.data, turns)
    for pretty in (True, False):
        for tight in (True, False):
            candidate = _insert(text, doc, turns, pretty, tight)
            if candidate is not None and _holds(candidate, name, expected):
                return candidate, True
    rewritten = _dump(expected)
    if _holds(rewritten, name, expected):
        return rewritten, False
    raise AppendError(f"{name}: the new turns cannot be written into this file without changing it")


def new_text(name: str, system: str | None, turns: Sequence[Message]) -> str:
    """A new conversation file's text: the system message, if any, then the turns."""
    head: list[str] = []
    if system is not None:
        head = _literal_block(system, "system", 2) or _dump_lines({"system": system}, flow=False)
    text, _ = append_turns("\n".join([*head, "messages:"]) + "\n", name, turns)
    return text


def _with_turns(data: Any, turns: Sequence[Message]) -> Any:
    if isinstance(data, list):
        return [*data, *turns]
    return {**data, "messages": [*(data.get("messages") or []), *turns]}


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)


def _holds(candidate: str, name: str, expected: Any) -> bool:
    try:
        doc = _load(candidate, name)
        _validate(doc)
    except InputError:
        return False
    return _canonical(doc.data) == _canonical(expected)


def _insert(text: str, doc: _Document, turns: Sequence[Message], pretty: bool, tight: bool) -> str | None:
    """The text with the turns inserted where the layout allows, or None.

    `pretty` writes multi-line text as literal blocks (else everything double-quoted); `tight`
    puts the turns before the blank lines that end a block scalar, which usually separate the
    list from what follows (else after them, for a `|+` scalar that keeps them as content).
    """
    import yaml

    nl = "\r\n" if "\r\n" in text else "\n"
    root = doc.root
    if isinstance(root, yaml.SequenceNode):
        return _insert_in_sequence(text, root, turns, pretty, tight, nl)
    if not isinstance(root, yaml.MappingNode):
        return None
    pairs = _pairs(root)
    key_column = root.start_mark.column
    block = not root.flow_style and text[root.start_mark.index : root.start_mark.index + 1] != "{"
    if "messages" not in pairs:
        if not block:
            return None
        lines = [" " * key_column + "messages:"]
        lines += [line for t in turns for line in _block_item(t, key_column + 2, pretty)]
        return _splice(text, len(text), lines, nl)
    key_node, value = pairs["messages"]
    if isinstance(value, yaml.SequenceNode):
        return _insert_in_sequence(text, value, turns, pretty, tight, nl)
    if isinstance(value, yaml.ScalarNode) and value.value == "" and block:
        # `messages:` with nothing after it: the list starts on the next line.
        lines = [line for t in turns for line in _block_item(t, key_column + 2, pretty)]
        return _splice(text, _line_end(text, key_node.end_mark.index), lines, nl)
    return None


def _insert_in_sequence(
    text: str, seq: yaml.SequenceNode, turns: Sequence[Message], pretty: bool, tight: bool, nl: str
) -> str | None:
    start, end = seq.start_mark.index, seq.end_mark.index
    if text[start : start + 1] == "[":
        if text[end - 1 : end] != "]":
            return None
        flow = ", ".join(_flow_item(t, pretty) for t in turns)
        if seq.value:
            at = seq.value[-1].end_mark.index
            return text[:at] + ", " + flow + text[at:]
        return text[: end - 1] + flow + text[end - 1 :]
    if not seq.value:
        return None
    at = _line_end(text, _content_end(seq.value[-1]))
    if tight:
        while at > 0:
            previous = text.rfind("\n", 0, at - 1) + 1
            if text[previous:at].strip():
                break
            at = previous
    lines = [line for t in turns for line in _block_item(t, seq.start_mark.column, pretty)]
    return _splice(text, at, lines, nl)


def _content_end(node: yaml.Node) -> int:
    """Where a block item's text really ends.

    A block collection's end mark lies at the next token, past any comments and blank lines
    that follow it; scalars and flow collections end exactly, so the latest of those counts.
    """
    import yaml

    ends: list[int] = []
    stack = [node]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode) or getattr(current, "flow_style", False):
            ends.append(current.end_mark.index)
        else:
            stack.extend(yamlsafe.children(current))
    return max(ends, default=node.end_mark.index)


def _line_end(text: str, index: int) -> int:
    """The start of the line after the one holding `index` (index itself when at a line start)."""
    if index > 0 and text[index - 1] == "\n":
        return index
    newline = text.find("\n", index)
    return len(text) if newline < 0 else newline + 1


def _splice(text: str, at: int, lines: list[str], nl: str) -> str:
    block = nl.join(lines) + nl
    if at == len(text) and text and not text.endswith("\n"):
        block = nl + block
    return text[:at] + block + text[at:]


class _Quoted(str):
    """A string to be written double-quoted: escapes make any text safe to round-trip."""


def _quoted(value: Any) -> Any:
    """The value with every string in it (a list of parts included) to be written double-quoted."""
    if isinstance(value, str):
        return _Quoted(value)
    if isinstance(value, list):
        return [_quoted(item) for item in value]
    if isinstance(value, dict):
        return {key: _quoted(item) for key, item in value.items()}
    return value


@functools.cache
def _dumper() -> type[yaml.SafeDumper]:
    """A safe dumper that writes multi-line text as `|` blocks where it can, and _Quoted quoted."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def quoted(dumper: yaml.SafeDumper, value: _Quoted) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(_Quoted, quoted)
    Dumper.add_representer(str, text)
    return Dumper


def _dump_lines(data: Mapping[str, Any], flow: bool) -> list[str]:
    return _dump(dict(data), flow).rstrip("\n").split("\n")


def _block_item(message: Message, column: int, pretty: bool) -> list[str]:
    """One message as block sequence lines, its dash at `column`."""
    pad = " " * column
    lines: list[str] = []
    for key, value in message.items():
        field_lines = _literal_block(value, key, 2) if pretty and isinstance(value, str) else None
        if field_lines is None:
            shown = value if pretty else _quoted(value)
            field_lines = _dump_lines({key: shown}, flow=False)
        lines.extend(field_lines)
    first = True
    out: list[str] = []
    for line in lines:
        if not line:
            out.append("")
            continue
        lead = "- " if first else "  "
        first = False
        out.append(pad + lead + line)
    return out


def _literal_block(value: str, key: str, step: int) -> list[str] | None:
    """`key: |` with the text below it, kept exactly (trailing spaces included), or None when a
    literal block cannot hold this text (no line break, or characters YAML would change)."""
    if "\n" not in value or not value.strip("\n") or not _LITERAL_SAFE.match(value):
        return None
    body = value.split("\n")
    if value.endswith("\n"):
        body.pop()
        chomp = "+" if value.endswith("\n\n") else ""
    else:
        chomp = "-"
    first = next(line for line in body if line)
    indicator = str(step) if first[:1] in (" ", "\t") or not first.strip() else ""
    return [f"{key}: |{indicator}{chomp}"] + [" " * step + line if line else "" for line in body]


def _flow_item(message: Message, pretty: bool) -> str:
    shown = {
        k: _quoted(v) if not pretty or (isinstance(v, str) and "\n" in v) else v for k, v in message.items()
    }
    return " ".join(_dump_lines(shown, flow=True))


def _dump(data: Any, flow: bool = False) -> str:
    import yaml

    dumped: str = yaml.dump(
        data, Dumper=_dumper(), default_flow_style=flow, sort_keys=False, allow_unicode=True, width=_NO_WRAP
    )
    return dumped
