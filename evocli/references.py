"""The text:/image:/file: parts of conversation files: checked, resolved, made from attachments."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from evocli.attach import DETAILS, STDIN, Attachment, Part, Sources, is_url, load
from evocli.errors import EvocliError, UsageError

REFERENCE_KEYS = ("text", "image", "file")


def is_reference(part: Any) -> bool:
    """Whether a conversation part is written in the short form (`text:`, `image:`, `file:`)."""
    return isinstance(part, dict) and "type" not in part and any(k in part for k in REFERENCE_KEYS)


def reference_problem(key: str, value: str) -> str | None:
    """Why an `image:` or `file:` value cannot name an attachment, or None."""
    if not value:
        return f"{key}: must not be empty"
    if value == STDIN:
        return f"{key}: - (stdin) cannot be attached from a conversation file"
    if key == "file" and is_url(value):
        return "file: takes a path; write a URL as image:"
    return None


def reference_error(part: Mapping[Any, Any], kind: Callable[[Any], str]) -> tuple[Any, str] | None:
    """What is wrong with a short-form part, and the key to point at; None when it is right.

    Exactly one of text:, image:, file: with a text value; image: may add detail:. `kind`
    describes a value of the wrong type ("a list")."""
    keys = [k for k in REFERENCE_KEYS if k in part]
    if len(keys) != 1:
        what = "only one of" if keys else "one of"
        return None, f"a part needs {what} text:, image:, file: (or type:)"
    key = keys[0]
    for extra in part:
        if extra != key and not (key == "image" and extra == "detail"):
            return extra, f"unknown key {extra!r} in {'an' if key == 'image' else 'a'} {key}: part"
    value = part[key]
    if not isinstance(value, str):
        what = {"text": "text", "file": "a path"}.get(key, "a path or URL")
        return key, f"{key}: must be {what}, got {kind(value)}"
    problem = reference_problem(key, value) if key != "text" else None
    if problem:
        return key, problem
    if "detail" in part and part["detail"] not in DETAILS:
        return "detail", f"detail must be one of {', '.join(DETAILS)}"
    return None


def resolve_parts(
    content: Sequence[Mapping[str, Any]], sources: Sources
) -> tuple[list[Part], list[Attachment]]:
    """Each part as the API takes it (see resolve_reference), and the attachments read for them
    (for the 50 MB check's message); an error names `content[i]`."""
    parts: list[Part] = []
    loaded: list[Attachment] = []
    for index, part in enumerate(content):
        try:
            resolved = resolve_reference(part, sources)
        except EvocliError as err:
            err.message = f"content[{index}]: {err.message}"
            raise
        if isinstance(resolved, Attachment):
            loaded.append(resolved)
            resolved = resolved.part
        parts.append(resolved)
    return parts, loaded


def resolve_reference(part: Mapping[str, Any], sources: Sources) -> Part | Attachment:
    """A checked part as the API takes it, or the Attachment it names (its `.part` is that).

    A typed part is returned as it is; `text:` is a text part; `image:` a URL or an image file
    (with the part's own `detail`); `file:` a file read like `-a`, an image or a text. Paths
    start from `sources.base`.
    """
    if "type" in part:
        return dict(part)
    if "text" in part:
        return {"type": "text", "text": part["text"]}
    if "image" in part:
        return load(part["image"], replace(sources, detail=part.get("detail")), image_only=True)
    return load(part["file"], replace(sources, detail=None))


def reference(attachment: Attachment, folder: str) -> Part:
    """The attachment as a conversation file in `folder` saves it.

    A URL or an image file is `image:` (with its `detail`), a text file `file:`; a relative
    path is rewritten relative to `folder` (an absolute one is kept). A text read from stdin is
    saved as the text that was sent; an image from stdin has nothing to refer to (UsageError, 2).
    """
    if attachment.kind == "url":
        return _with_detail({"image": attachment.source}, attachment.part)
    if attachment.path is None:
        if attachment.kind == "image":
            raise UsageError(
                "an image read from stdin cannot be saved in a conversation file",
                hint="save it to a file and attach that: only a reference to it is saved",
            )
        return {"text": attachment.part["text"]}
    key = "image" if attachment.kind == "image" else "file"
    return _with_detail({key: _relative(attachment.path, folder)}, attachment.part)


def _with_detail(ref: Part, part: Part) -> Part:
    detail = part.get("image_url", {}).get("detail")
    if detail is not None:
        ref["detail"] = detail
    return ref


def _relative(path: str, folder: str) -> str:
    if os.path.isabs(path):
        return path
    try:
        return os.path.relpath(path, folder or os.curdir)
    except ValueError:  # another drive, on Windows
        return os.path.abspath(path)
