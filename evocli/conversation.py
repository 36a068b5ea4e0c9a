"""YAML conversation files: safe loading, validation and placeholders (pure); appending is yamlappend."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evocli import attach, config, references, yamlsafe
from evocli.body import param_problem
from evocli.errors import EvocliError, InputError, UsageError
from evocli.jsonsafe import json_problem as _json_problem
from evocli.messages import Message

if TYPE_CHECKING:
    import yaml

ROLES = ("system", "developer", "user", "assistant", "tool")
TOP_KEYS = ("model", "system", "params", "vars", "schema", "messages")
MESSAGE_KEYS = ("role", "content", "name", "tool_call_id", "tool_calls", "literal")
PART_TYPES = ("text", "image_url")

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
STDIN_NAME = "stdin"
PLACEHOLDER_HINT = "give each a value with --var NAME=VALUE or under vars: in the file"


@dataclass(frozen=True)
class Conversation:
    """A checked conversation file, as written: placeholders unfilled, `literal` flags kept."""

    name: str
    model: str | None = None
    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    schema: Any = None  # as written: read by schema.from_value when the file is sent
    schema_where: str = field(default="schema", compare=False)  # `FILE:LINE: schema`, for errors

    def overrides(self) -> config.Overrides:
        """The file's own settings, as the layer between the flags and the environment."""
        return config.Overrides(model=self.model, params=self.params)


@dataclass(frozen=True)
class Prepared:
    """What to send, the turn piped stdin added (to append after a reply), the files read."""

    messages: list[Message]
    new_turns: list[Message]
    attachments: list[attach.Attachment] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Loading: safe YAML only, aliases bounded, every error with its file and line.


@dataclass
class _Document:
    name: str
    root: yaml.Node
    data: Any


def _line(name: str, node: yaml.Node | None) -> str:
    return f"{name}:{node.start_mark.line + 1}" if node is not None else name


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _load(text: str, name: str) -> _Document:
    """Parse with safe loading only, after checking the node graph for alias bombs."""
    root, data = yamlsafe.load(text, name, what="conversation file")
    if root is None:
        raise InputError(f"{name}: the file is empty", hint="a conversation needs messages:")
    return _Document(name, root, data)


def _pairs(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's text keys with their key and value nodes (merge keys already flattened)."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}


def _items(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


# ---------------------------------------------------------------------------------------------
# Validation.


def parse(text: str, name: str) -> Conversation:
    """Load and check a conversation file: the mapping form or a bare list of messages."""
    return _validate(_load(text, name))


def _validate(doc: _Document) -> Conversation:
    name, data, root = doc.name, doc.data, doc.root
    if isinstance(data, list):
        return Conversation(name, messages=_check_messages(data, root, name))
    if not isinstance(data, dict):
        raise InputError(
            f"{_line(name, root)}: expected a mapping ({', '.join(TOP_KEYS)}) "
            f"or a list of messages, got {_kind(data)}"
        )
    pairs = _pairs(root)
    for key in data:
        if not isinstance(key, str):
            raise InputError(f"{_line(name, root)}: keys must be text, got {key!r}")
        if key not in TOP_KEYS:
            raise InputError(
                f"{_line(name, pairs[key][0])}: unknown key {key!r}",
                hint=f"known keys: {', '.join(TOP_KEYS)}",
            )

    def node(key: str) -> yaml.Node | None:
        return pairs[key][1] if key in pairs else None

    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"{_line(name, node('model'))}: model must be a model id, got {_kind(model)}")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise InputError(f"{_line(name, node('system'))}: system must be text, got {_kind(system)}")
    messages = data.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise InputError(f"{_line(name, node('messages'))}: messages must be a list, got {_kind(messages)}")
    return Conversation(
        name,
        model=model,
        system=system,
        params=_check_params(data.get("params"), node("params"), name),
        vars=_check_vars(data.get("vars"), node("vars"), name),
        messages=_check_messages(messages or [], node("messages"), name),
        schema=data.get("schema"),
        schema_where=f"{_line(name, node('schema'))}: schema",
    )


def _check_params(value: Any, node: yaml.Node | None, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    where = _line(name, node)
    if not isinstance(value, dict):
        raise InputError(f"{where}: params must be a mapping of body fields, got {_kind(value)}")
    pairs = _pairs(node) if node is not None else {}
    for key, item in value.items():
        problem = param_problem(key, item)
        if problem:
            at = _line(name, pairs[key][0]) if isinstance(key, str) and key in pairs else where
            raise InputError(f"{at}: {problem}")
    return dict(value)


def _check_vars(value: Any, node: yaml.Node | None, name: str) -> dict[str, str]:
    if value is None:
        return {}
    where = _line(name, node)
    if not isinstance(value, dict):
        raise InputError(f"{where}: vars must be a mapping of names to values, got {_kind(value)}")
    pairs = _pairs(node) if node is not None else {}
    out: dict[str, str] = {}
    for key, item in value.items():
        at = _line(name, pairs[key][0]) if isinstance(key, str) and key in pairs else where
        if not isinstance(key, str) or not NAME.match(key):
            raise InputError(f"{at}: vars: {key!r} is not a placeholder name (letters, digits and _)")
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise InputError(f"{at}: vars.{key} must be text or a number, got {_kind(item)} (quote it)")
        out[key] = item if isinstance(item, str) else str(item)
    return out


def _check_messages(items: list[Any], node: yaml.Node | None, name: str) -> list[Message]:
    nodes = _items(node) if node is not None else []
    checked: list[Message] = []
    for index, item in enumerate(items):
        item_node = nodes[index] if index < len(nodes) else node
        checked.append(_check_message(item, item_node, f"messages[{index}]", name, short_forms=True))
    return checked


def _check_message(item: Any, node: yaml.Node | None, label: str, name: str, short_forms: bool) -> Message:
    where = _line(name, node)
    if not isinstance(item, dict):
        raise InputError(f"{where}: {label}: expected a mapping with role and content, got {_kind(item)}")
    pairs = _pairs(node) if node is not None else {}

    def at(key: str) -> str:
        return _line(name, pairs[key][1]) if key in pairs else where

    for key in item:
        if not isinstance(key, str) or key not in MESSAGE_KEYS:
            shown = _line(name, pairs[key][0]) if isinstance(key, str) and key in pairs else where
            raise InputError(
                f"{shown}: {label}: unknown key {key!r}", hint=f"known keys: {', '.join(MESSAGE_KEYS)}"
            )
    role = item.get("role")
    if "role" not in item:
        raise InputError(f"{where}: {label}: role is missing")
    if role not in ROLES:
        raise InputError(f"{at('role')}: {label}: role must be one of {', '.join(ROLES)}")
    for key in ("name", "tool_call_id"):
        if key in item and not isinstance(item[key], str):
            raise InputError(f"{at(key)}: {label}: {key} must be text, got {_kind(item[key])}")
    if "literal" in item and not isinstance(item["literal"], bool):
        raise InputError(f"{at('literal')}: {label}: literal must be true or false")
    if "tool_calls" in item:
        calls = item["tool_calls"]
        problem = _json_problem(calls) if isinstance(calls, list) else "must be a list"
        if problem:
            raise InputError(f"{at('tool_calls')}: {label}: tool_calls {problem}")
    content = item.get("content")
    if content is None:
        if role == "assistant" and item.get("tool_calls"):
            return dict(item)
        raise InputError(f"{where if 'content' not in pairs else at('content')}: {label}: content is missing")
    if isinstance(content, list):
        content_node = pairs["content"][1] if "content" in pairs else node
        parts = _items(content_node) if content_node is not None else []
        for index, part in enumerate(content):
            part_node = parts[index] if index < len(parts) else content_node
            _check_part(part, part_node, f"{label}: content[{index}]", name, short_forms)
    elif not isinstance(content, str):
        raise InputError(
            f"{at('content')}: {label}: content must be text or a list of parts, got {_kind(content)}",
            hint="quote it to send it as text",
        )
    return dict(item)


def check_message(item: Any, label: str) -> Message:
    """Validate one message that comes from outside a file (a batch line), with no location.

    Only the API's own part forms are accepted: the short forms name files in a folder."""
    try:
        return _check_message(item, None, label, "", short_forms=False)
    except InputError as err:
        err.message = err.message.removeprefix(": ")
        raise


def _check_part(part: Any, node: yaml.Node | None, label: str, name: str, short_forms: bool) -> None:
    where = _line(name, node)
    if not isinstance(part, dict):
        expected = "text:, image:, file: or type:" if short_forms else "type"
        raise InputError(f"{where}: {label}: expected a mapping with {expected}, got {_kind(part)}")
    if short_forms and "type" not in part:
        found = references.reference_error(part, _kind)
        if found is not None:
            key, message = found
            pairs = _pairs(node) if node is not None else {}
            at = pairs[key][1] if isinstance(key, str) and key in pairs else node
            raise InputError(f"{_line(name, at)}: {label}: {message}")
        return
    kind = part.get("type")
    if kind not in PART_TYPES:
        raise InputError(f"{where}: {label}: type must be one of {', '.join(PART_TYPES)}")
    if kind == "text" and not isinstance(part.get("text"), str):
        raise InputError(f"{where}: {label}: a text part needs text:")
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise InputError(f"{where}: {label}: an image_url part needs image_url: {{url: ...}}")
    problem = _json_problem(part)
    if problem:
        raise InputError(f"{where}: {label}: {problem}")


# ---------------------------------------------------------------------------------------------
# Placeholders and stdin.


def parse_vars(items: Sequence[str]) -> dict[str, str]:
    """`--var NAME=VALUE` pairs; the value is taken as is (never expanded)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not NAME.match(key):
            raise UsageError(
                f"--var expects NAME=VALUE with NAME made of letters, digits and _, got {item!r}"
            )
        out[key] = value
    return out


def message_texts(message: Message) -> Iterator[str]:
    """The text a message carries: its string content, or its text parts."""
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        yield from (p["text"] for p in content if _is_text(p))


def _is_text(part: Mapping[str, Any]) -> bool:
    """A text part, typed (type: text) or short (text:)."""
    return part.get("type", "text") == "text" and "text" in part


def placeholders(conv: Conversation) -> list[str]:
    """The placeholder names the file uses, in order of first use (literal messages excluded)."""
    texts = [conv.system] if conv.system is not None else []
    for message in conv.messages:
        if not message.get("literal"):
            texts.extend(message_texts(message))
    return placeholder_names(texts)


def placeholder_names(texts: Iterable[str]) -> list[str]:
    """The placeholder names in these texts, in order of first use."""
    return list(dict.fromkeys(m.group(1) for text in texts for m in PLACEHOLDER.finditer(text)))


def fill(text: str, values: Mapping[str, str]) -> str:
    """One pass: each placeholder becomes its value, and values are never looked at again."""
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def filled(message: Message, values: Mapping[str, str]) -> Message:
    """The message with its placeholders filled (unless it is marked literal)."""
    literal = bool(message.get("literal"))
    out = {k: v for k, v in message.items() if k != "literal"}
    if literal:
        return out
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = fill(content, values)
    elif isinstance(content, list):
        out["content"] = [{**p, "text": fill(p["text"], values)} if _is_text(p) else p for p in content]
    return out


def turn(role: str, content: str) -> Message:
    """A new turn as it is written to the file: `literal` when its text looks like a placeholder,
    so the next run sends it back exactly instead of trying to fill it."""
    message: Message = {"role": role}
    if PLACEHOLDER.search(content):
        message["literal"] = True
    message["content"] = content
    return message


def sendable(message: Message) -> Message:
    """A message as the API gets it (without evocli's own `literal` flag)."""
    return {k: v for k, v in message.items() if k != "literal"}


def prepare(
    conv: Conversation,
    variables: Mapping[str, str],
    stdin_text: str | None,
    sources: attach.Sources | None = None,
) -> Prepared:
    """The messages to send: placeholders filled, short-form parts resolved, and piped stdin as
    data or as the last user turn.

    Values come from `variables` (--var) over the file's vars:; piped stdin fills {{ stdin }}
    when the file has one, else it becomes a final user message. Empty stdin counts as none.
    `image:` and `file:` parts are read now, at every run, relative to `sources.base`; without
    `sources`, relative to the folder of the file named `conv.name` (the current folder for
    `<stdin>`). Their content is data: placeholders in it are never filled.
    """
    sources = sources or attach.Sources(base=os.path.dirname(conv.name))
    piped = stdin_text.rstrip("\r\n") if stdin_text and stdin_text.strip() else None
    used = placeholders(conv)
    values = {**conv.vars, **variables}
    if piped is not None and STDIN_NAME in used:
        values[STDIN_NAME] = piped
    missing = [n for n in used if n not in values]
    if missing:
        hint = PLACEHOLDER_HINT
        if STDIN_NAME in missing:
            hint += "; {{ stdin }} is filled from piped stdin"
        label = "placeholder" if len(missing) == 1 else "placeholders"
        raise InputError(f"{conv.name}: undefined {label}: {', '.join(missing)}", hint=hint)
    messages: list[Message] = []
    if conv.system is not None:
        messages.append({"role": "system", "content": fill(conv.system, values)})
    loaded: list[attach.Attachment] = []
    messages.extend(
        _resolved(filled(m, values), sources, f"{conv.name}: messages[{i}]", loaded)
        for i, m in enumerate(conv.messages)
    )
    new_turns: list[Message] = []
    if piped is not None and STDIN_NAME not in used:
        new_turns.append(turn("user", piped))
        messages.append(sendable(new_turns[-1]))
    if not conv.messages and not new_turns:
        raise InputError(
            f"{conv.name}: the conversation has no messages",
            hint="add a messages: list, or pipe the user's turn on stdin",
        )
    return Prepared(messages, new_turns, loaded)


def _resolved(
    message: Message, sources: attach.Sources, label: str, loaded: list[attach.Attachment]
) -> Message:
    """The message with its short-form parts as API parts; the attachments read go to `loaded`."""
    content = message.get("content")
    if not isinstance(content, list) or not any(references.is_reference(p) for p in content):
        return message
    try:
        parts, attachments = references.resolve_parts(content, sources)
    except EvocliError as err:
        err.message = f"{label}: {err.message}"
        raise
    loaded.extend(attachments)
    return {**message, "content": parts}


def reference_turn(text: str, attachments: Sequence[attach.Attachment], folder: str) -> Message:
    """A sent user turn as a conversation file in `folder` saves it: as `turn` without
    attachments, else its content is `text:` and then one reference per attachment (`image:` /
    `file:`, relative to `folder`), never the data. Call it before sending: an attachment that
    cannot be saved (an image from stdin) is a UsageError (2)."""
    if not attachments:
        return turn("user", text)
    parts = [{"text": text}, *(references.reference(a, folder) for a in attachments)]
    message: Message = {"role": "user"}
    if any(PLACEHOLDER.search(p["text"]) for p in parts if "text" in p):
        message["literal"] = True
    message["content"] = parts
    return message
