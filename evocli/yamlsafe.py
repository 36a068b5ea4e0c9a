"""Guarded YAML loading for the files evocli reads: conversation files and the config file.

Safe loading only (no tag ever runs code), a single document, and a check of the node graph
before any Python object is built: duplicate keys, recursive aliases and aliases that would blow
the document up (a "billion laughs") are refused. Every error names the file and, where it can,
the line. yaml itself is imported only when a file is loaded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from evocli.errors import EvocliError, InputError

if TYPE_CHECKING:
    import yaml

# How far aliases may expand a document beyond its own nodes and text: ten times the file plus a
# million, so a long text anchored once and reused a few times passes, while a "billion laughs"
# (a few hundred bytes that expand to billions of nodes) is refused.
ALIAS_FACTOR = 10
ALIAS_BUDGET = 1_000_000


def load(
    text: str | bytes,
    name: str,
    *,
    what: str = "file",
    error: type[EvocliError] = InputError,
) -> tuple[yaml.Node | None, Any]:
    """The document's root node and its data; (None, None) when the document is empty.

    `name` starts every message (`review.yaml:3: duplicate key 'model'`); `what` says what kind
    of file holds one document; problems are raised as `error`.
    """
    import yaml

    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = None
    try:
        loader = loader_class(text)
        root = loader.get_single_node()
        if root is None:
            return None, None
        check_graph(root, name, error)
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise error(_yaml_problem(exc, name, what)) from None
    except yaml.YAMLError as exc:
        raise error(f"{name}: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise error(f"{name}: the document is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _line(name: str, node: yaml.Node) -> str:
    return f"{name}:{node.start_mark.line + 1}"


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str, what: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{mark.line + 1}" if mark is not None else name
    problem = exc.problem or exc.context or "invalid YAML"
    if "expected a single document" in (exc.context or ""):
        problem = f"a second YAML document starts here; a {what} holds one"
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"{where}: tag {shown} is not allowed: only plain YAML data is loaded"
    return f"{where}: {problem}"


def children(node: yaml.Node) -> list[yaml.Node]:
    """A node's child nodes: a sequence's items, a mapping's keys and values."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _own_size(node: yaml.Node) -> int:
    import yaml

    return 1 + len(node.value) if isinstance(node, yaml.ScalarNode) else 1


def check_graph(root: yaml.Node, name: str, error: type[EvocliError] = InputError) -> None:
    """Refuse recursive aliases, duplicate keys, and aliases that blow the document up.

    Aliases share nodes, so the graph is as small as the file; its expanded size is summed over
    that graph (each node once, iteratively), so a "billion laughs" is measured, not built.
    """
    import yaml

    expanded: dict[int, int] = {}
    active: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            active.discard(key)
            expanded[key] = _own_size(node) + sum(expanded[id(c)] for c in children(node))
            continue
        if key in expanded:
            continue
        active.add(key)
        distinct += _own_size(node)
        if isinstance(node, yaml.MappingNode):
            _check_duplicates(node, name, error)
        stack.append((node, True))
        for child in children(node):
            if id(child) in active:
                raise error(f"{_line(name, child)}: a recursive alias is not allowed")
            if id(child) not in expanded:
                stack.append((child, False))
    limit = ALIAS_FACTOR * distinct + ALIAS_BUDGET
    if expanded[id(root)] > limit:
        raise error(
            f"{name}: its aliases would expand it to {expanded[id(root)]:,} nodes and characters, "
            f"beyond the limit of {limit:,}: refused",
            hint="write the repeated text out, or use fewer nested aliases",
        )


def _check_duplicates(node: yaml.MappingNode, name: str, error: type[EvocliError]) -> None:
    import yaml

    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key_node.tag, key_node.value)
        if ident in seen:
            raise error(f"{_line(name, key_node)}: duplicate key {key_node.value!r}")
        seen.add(ident)
