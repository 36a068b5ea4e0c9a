"""Attachments: images and text files as message parts, read bounded and refused before any request."""

from __future__ import annotations

import binascii
import codecs
import itertools
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from evocli import payload
from evocli.body import IMAGE_DETAILS
from evocli.errors import InputError, NoInputError, UsageError

MB = 1_000_000  # limits are in decimal megabytes, as the contract states them
IMAGE_LIMIT = 20 * MB
BODY_LIMIT = payload.BODY_LIMIT
DETAILS = IMAGE_DETAILS
STDIN = "-"
STDIN_NAME = "stdin"
IMAGE_KINDS = "PNG, JPEG, GIF or WebP"

# A multiple of 3, so every full chunk encodes to base64 without padding and the pieces join up.
_CHUNK = 3 * 65536
_HEAD = 12  # the bytes that tell every known image kind apart (WebP needs 12)
_SIZE_HINT = "resize or compress it, or send it as an http(s) URL"

Part = dict[str, Any]
Opener = Callable[[str], AbstractContextManager[BinaryIO]]


def open_path(path: str) -> BinaryIO:
    """Open a file for reading, unbuffered: FIFOs and /dev/fd/N are read as they come."""
    return open(path, "rb", buffering=0)


@dataclass(frozen=True)
class Sources:
    """Where attachments are read from: the folder relative paths start from ("" = the current
    folder), how a path is opened, the stream `-` reads (None: `-` is refused), and the image
    detail to ask for."""

    base: str = ""
    detail: str | None = None
    opener: Opener = open_path
    stdin: BinaryIO | None = None

    def __post_init__(self) -> None:
        if self.detail is not None and self.detail not in DETAILS:
            raise UsageError(f"image detail must be one of {', '.join(DETAILS)}, got {self.detail!r}")


@dataclass(frozen=True)
class Attachment:
    """One attachment, ready to send: its API part and what it came from."""

    source: str  # as given: a path, an http(s) URL, or "-"
    path: str | None  # the path that was opened (base joined); None for a URL or stdin
    kind: Literal["image", "url", "text"]
    part: Part
    size: int  # the bytes read (0 for a URL)

    @property
    def name(self) -> str:
        """The attachment's NAME: the source as given, `stdin` for `-`."""
        return STDIN_NAME if self.source == STDIN else self.source


# ---------------------------------------------------------------------------------------------
# Recognising and reading.


def sniff(head: bytes) -> str | None:
    """The MIME type of a PNG, JPEG, GIF or WebP image from its first bytes, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_url(source: str) -> bool:
    """Whether SOURCE is sent as a URL (http:// or https://, in any case) rather than read."""
    return source[:8].lower().startswith(("http://", "https://"))


def load(source: str, sources: Sources | None = None, *, image_only: bool = False) -> Attachment:
    """One attachment: an http(s) URL as it is, `-` from stdin, else the file at base/SOURCE.

    A file is an image when its first bytes say so, else it must be UTF-8 text. Refused, each
    naming the file: missing, unreadable or a folder (NoInputError, 66); neither image nor text,
    not an image when `image_only`, an image over 20 MB or a text over 50 MB (InputError, 65).
    """
    sources = sources or Sources()
    if is_url(source):
        return _url(source, sources.detail)
    if source == STDIN:
        if sources.stdin is None:
            raise InputError("cannot attach - here: stdin is not available for an attachment")
        return _read(nullcontext(sources.stdin), source, None, STDIN_NAME, sources.detail, image_only)
    if not source:
        raise InputError("cannot attach an empty path")
    path = os.path.join(sources.base, source) if sources.base else source
    shown = source if path == source else f"{source} ({path})"
    try:
        opened = sources.opener(path)
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    return _read(opened, source, path, shown, sources.detail, image_only)


def load_all(given: Sequence[str], sources: Sources | None = None) -> list[Attachment]:
    """Each source in order; `-` at most once, since stdin can be read only once (exit 2)."""
    if list(given).count(STDIN) > 1:
        raise UsageError("- can be attached only once: stdin is read once")
    return [load(source, sources) for source in given]


def _url(source: str, detail: str | None) -> Attachment:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(source).hostname
    except ValueError:  # a malformed [IPv6] host or port
        host = None
    if not host or any(ch.isspace() or ord(ch) < 32 for ch in source):
        raise InputError(f"cannot attach {source}: not a valid URL")
    return Attachment(source, None, "url", image_part(source, detail), 0)


def _unreadable(shown: str, exc: OSError) -> NoInputError:
    reason = "it is a folder" if isinstance(exc, IsADirectoryError) else (exc.strerror or str(exc))
    return NoInputError(f"cannot attach {shown}: {reason}")


def _read(
    opened: AbstractContextManager[BinaryIO],
    source: str,
    path: str | None,
    shown: str,
    detail: str | None,
    image_only: bool,
) -> Attachment:
    try:
        with opened as stream:
            head = _read_upto(stream, _HEAD)
            mime = sniff(head)
            if mime is not None:
                url, size = _encode(stream, head, mime, shown)
                return Attachment(source, path, "image", image_part(url, detail), size)
            if image_only:
                raise InputError(f"cannot attach {shown}: not a {IMAGE_KINDS} image")
            text, size = _decode(stream, head, shown)
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    name = STDIN_NAME if source == STDIN else source
    return Attachment(source, path, "text", text_part(name, text), size)


def _read_upto(stream: BinaryIO, count: int) -> bytes:
    """Up to `count` bytes: a pipe may hand them over a few at a time."""
    data = b""
    while len(data) < count:
        chunk = stream.read(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _known_size(stream: BinaryIO) -> int | None:
    """A regular file's size (to refuse it before reading), None for pipes and other streams."""
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _chunks(stream: BinaryIO, limit: int, too_big: Callable[[int | None], InputError]) -> Iterator[bytes]:
    """The stream's bytes after the head, chunk by chunk. A regular file over `limit` is refused
    before it is read; any other stream is read to at most `limit` + 1 bytes in all (an endless
    device or a huge pipe is never read whole)."""
    size = _known_size(stream)
    if size is not None and size > limit:
        raise too_big(size)
    return _bounded(stream, limit, too_big)


def _bounded(stream: BinaryIO, limit: int, too_big: Callable[[int | None], InputError]) -> Iterator[bytes]:
    read = _HEAD
    while chunk := stream.read(min(_CHUNK, limit + 1 - read)):
        read += len(chunk)
        if read > limit:
            raise too_big(None)  # the size it would have had is unknown
        yield chunk


def _encode(stream: BinaryIO, head: bytes, mime: str, shown: str) -> tuple[str, int]:
    """The image as a data URL, encoded as it is read: the raw bytes are never held whole."""

    def too_big(size: int | None) -> InputError:
        what = f"{size:,} bytes, " if size is not None else ""
        return InputError(
            f"cannot attach {shown}: the image is {what}over the 20 MB limit ({IMAGE_LIMIT:,} bytes)",
            hint=_SIZE_HINT,
        )

    # Pieces of text joined once: no large buffer is freed before the request is encoded, which
    # would make the allocator serve the next large blocks from its heap and keep the pages.
    pieces = [f"data:{mime};base64,"]
    carry = head
    size = len(head)
    for chunk in _chunks(stream, IMAGE_LIMIT, too_big):
        size += len(chunk)
        data = carry + chunk if carry else chunk
        cut = len(data) - len(data) % 3
        pieces.append(binascii.b2a_base64(memoryview(data)[:cut], newline=False).decode("ascii"))
        carry = data[cut:]
    pieces.append(binascii.b2a_base64(carry, newline=False).decode("ascii"))
    return "".join(pieces), size


def _decode(stream: BinaryIO, head: bytes, shown: str) -> tuple[str, int]:
    """The file as text: strict UTF-8 without NUL characters, decoded as it is read."""

    def too_big(size: int | None) -> InputError:
        what = f"{size:,} bytes, " if size is not None else ""
        return InputError(
            f"cannot attach {shown}: the text is {what}over the 50 MB limit of a whole request "
            f"({BODY_LIMIT:,} bytes)"
        )

    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces: list[str] = []
    size = 0
    for chunk in itertools.chain([head], _chunks(stream, BODY_LIMIT, too_big)):
        pieces.append(_decode_piece(decoder, chunk, size, shown))
        size += len(chunk)
    pieces.append(_decode_piece(decoder, b"", size, shown, final=True))
    return "".join(pieces), size


def _decode_piece(
    decoder: codecs.IncrementalDecoder, chunk: bytes, before: int, shown: str, final: bool = False
) -> str:
    """The text of one chunk; `before` counts the bytes of the earlier chunks, for the message."""
    pending = len(decoder.getstate()[0])
    try:
        piece = decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise _not_text(shown, f"invalid UTF-8 at byte {before - pending + exc.start}") from None
    if "\x00" in piece:
        raise _not_text(shown, "it holds NUL bytes")
    return piece


def _not_text(shown: str, why: str) -> InputError:
    return InputError(
        f"cannot attach {shown}: neither a {IMAGE_KINDS} image nor UTF-8 text ({why})",
        hint="attach images as PNG, JPEG, GIF or WebP, and text files as UTF-8",
    )


# ---------------------------------------------------------------------------------------------
# Parts and the user message.


def image_part(url: str, detail: str | None = None) -> Part:
    """An image part: a data URL or an http(s) URL, with `detail` when one is given."""
    image: dict[str, str] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def text_part(name: str, text: str) -> Part:
    """A text file as a part: a header line naming it, the text exactly, then `</file>`.

    The text is written as it is, between exactly one line break after the header and exactly
    one before `</file>` (so a file ending in a newline shows a blank line there, and the text
    is recoverable byte for byte). NAME is an XML attribute value: & < > " become &amp; &lt;
    &gt; &quot;, and control characters (a line break in a name) become &#N;.
    """
    return {"type": "text", "text": f'<file name="{attribute(name)}">\n{text}\n</file>'}


_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_NEEDS_ESCAPE = re.compile(r'[&<>"\x00-\x1f\x7f]')


def attribute(name: str) -> str:
    """NAME as written inside name="…"."""
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(), f"&#{ord(m.group())};"), name)


def user_content(text: str, attachments: Sequence[Attachment]) -> str | list[Part]:
    """A user message's content: the text as it is without attachments, else the text part
    first and then each attachment's part, in order."""
    if not attachments:
        return text
    return [{"type": "text", "text": text}, *(a.part for a in attachments)]


def add_parts(message: Mapping[str, Any], attachments: Sequence[Attachment]) -> dict[str, Any]:
    """A copy of the message with the attachments' parts after its content."""
    out = dict(message)
    if not attachments:
        return out
    content = out.get("content")
    parts = [a.part for a in attachments]
    if isinstance(content, str):
        out["content"] = [{"type": "text", "text": content}, *parts]
    else:
        out["content"] = [*(content or []), *parts]
    return out


def check_request_size(size: int, attachments: Sequence[Attachment]) -> None:
    """Refuse an encoded request body over 50 MB (65), naming the attachments that made it."""
    if size <= BODY_LIMIT:
        return
    names = ", ".join(a.name for a in attachments) or "no attachments"
    raise InputError(
        f"the request would be {size:,} bytes, over the 50 MB limit ({BODY_LIMIT:,} bytes); "
        f"attached: {names}",
        hint="attach fewer or smaller files, or send images as http(s) URLs",
    )
