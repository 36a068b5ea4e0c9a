"""Attachments as pure-ish functions: kinds by magic bytes, exact parts, refusals, limits, bounded
reads, FIFOs, and the request body helpers (size, bytes, dry-run shortening)."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evocli import attach, payload
from evocli.attach import Attachment, Sources, load, load_all
from evocli.errors import EvocliError, ExitCode, InputError, NoInputError, UsageError

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
GIF87 = b"GIF87a\x01\x00\x01\x00\x80\x00"
GIF89 = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\r\x00\x00\x00"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(source: str, sources: Sources | None = None, **kw: Any) -> EvocliError:
    with pytest.raises(EvocliError) as info:
        load(source, sources, **kw)
    return info.value


# ---------------------------------------------------------------------------------------------
# Kinds and exact parts.


@pytest.mark.parametrize(
    ("name", "data", "url"),
    [
        ("photo.jpg", PNG, "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE="),
        ("shot.png", JPEG, "data:image/jpeg;base64,/9j/4AAQSkZJRgAB"),
        ("anim.webp", GIF87, "data:image/gif;base64,R0lGODdhAQABAIAA"),
        ("old.txt", GIF89, "data:image/gif;base64,R0lGODlhAQABAA=="),
        ("pic.gif", WEBP, "data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAA="),
        ("noext", b"\x89PNG\r\n\x1a\n", "data:image/png;base64,iVBORw0KGgo="),
    ],
)
def test_images_are_known_by_their_bytes_not_their_extension(name: str, data: bytes, url: str) -> None:
    Path(name).write_bytes(data)
    a = load(name)
    assert a == Attachment(name, name, "image", {"type": "image_url", "image_url": {"url": url}}, len(data))


def test_image_detail_is_added() -> None:
    Path("a.png").write_bytes(GIF89)
    assert load("a.png", Sources(detail="low")).part == {
        "type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlhAQABAA==", "detail": "low"}}


def test_a_riff_that_is_not_webp_is_not_an_image() -> None:
    Path("a.wav").write_bytes(b"RIFF\x1a\x00\x00\x00WAVEfmt ")
    err = refused("a.wav")
    assert (err.code, err.message) == (
        65, "cannot attach a.wav: neither a PNG, JPEG, GIF or WebP image nor UTF-8 text (it holds NUL bytes)")


@pytest.mark.parametrize(
    ("source", "detail", "part"),
    [
        ("https://example.com/a.png", None, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}),
        ("HTTP://example.com/x?y=1", "high",
         {"type": "image_url", "image_url": {"url": "HTTP://example.com/x?y=1", "detail": "high"}}),
    ],
)
def test_a_url_is_sent_as_it_is(source: str, detail: str | None, part: dict[str, Any]) -> None:
    def never(path: str) -> BinaryIO:
        raise AssertionError("a URL is never opened")

    a = load(source, Sources(detail=detail, opener=never))
    assert (a.kind, a.part, a.size, a.path) == ("url", part, 0, None)


@pytest.mark.parametrize("source", ["https://", "http:///path", "https://exa mple.com/a.png", "https://[::1/x"])
def test_a_url_without_a_host_is_refused(source: str) -> None:
    err = refused(source)
    assert (err.code, err.message) == (65, f"cannot attach {source}: not a valid URL")


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (b"line 1\nline 2\n", '<file name="notes.txt">\nline 1\nline 2\n\n</file>'),
        (b"no final newline", '<file name="notes.txt">\nno final newline\n</file>'),
        ("naïve ☃ 🎉\r\n".encode(), '<file name="notes.txt">\nnaïve ☃ 🎉\r\n\n</file>'),
        (b"", '<file name="notes.txt">\n\n</file>'),
        (b"\xef\xbb\xbfbom kept", '<file name="notes.txt">\n\ufeffbom kept\n</file>'),
    ],
)
def test_text_files_are_sent_exactly_between_header_and_footer(content: bytes, text: str) -> None:
    Path("notes.txt").write_bytes(content)
    a = load("notes.txt")
    assert a == Attachment("notes.txt", "notes.txt", "text", {"type": "text", "text": text}, len(content))


def test_name_is_the_path_as_given_written_as_an_attribute(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    odd = 'sub/a "b" & <c>\nd\te.txt'
    Path(odd).write_bytes(b"x")
    assert load(odd).part["text"] == '<file name="sub/a &quot;b&quot; &amp; &lt;c&gt;&#10;d&#9;e.txt">\nx\n</file>'
    assert load("./sub/../" + odd).part["text"].startswith('<file name="./sub/../sub/a &quot;')


def test_stdin_is_read_once_and_named_stdin() -> None:
    text = load("-", Sources(stdin=io.BytesIO(b"piped\n")))
    assert text == Attachment("-", None, "text", {"type": "text", "text": '<file name="stdin">\npiped\n\n</file>'}, 6)
    assert text.name == "stdin"
    image = load("-", Sources(stdin=io.BytesIO(JPEG), detail="auto"))
    assert image.part == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRgAB", "detail": "auto"}}


def test_stdin_is_not_closed_by_reading_it() -> None:
    stream = io.BytesIO(b"x")
    load("-", Sources(stdin=stream))
    assert not stream.closed


def test_dash_twice_or_without_stdin() -> None:
    with pytest.raises(UsageError) as info:
        load_all(["-", "a", "-"], Sources(stdin=io.BytesIO(b"")))
    assert (info.value.code, info.value.message) == (2, "- can be attached only once: stdin is read once")
    err = refused("-")
    assert (err.code, err.message) == (65, "cannot attach - here: stdin is not available for an attachment")


def test_relative_paths_start_from_the_base(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n.txt").write_text("hi")
    a = load("n.txt", Sources(base="data"))
    assert (a.path, a.part["text"]) == (os.path.join("data", "n.txt"), '<file name="n.txt">\nhi\n</file>')
    absolute = load(str(tmp_path / "data" / "n.txt"), Sources(base="elsewhere"))
    assert absolute.path == str(tmp_path / "data" / "n.txt")
    err = refused("m.txt", Sources(base="data"))
    assert (err.code, err.message) == (66, "cannot attach m.txt (data/m.txt): No such file or directory")


def test_load_all_keeps_the_order() -> None:
    Path("a.txt").write_text("A")
    Path("b.gif").write_bytes(GIF89)
    got = load_all(["b.gif", "https://h/c.png", "a.txt"])
    assert [(a.source, a.kind) for a in got] == [("b.gif", "image"), ("https://h/c.png", "url"), ("a.txt", "text")]


# ---------------------------------------------------------------------------------------------
# Refusals.


def test_missing_file_and_folder_are_exit_66(tmp_path: Path) -> None:
    err = refused("nope.png")
    assert (type(err), err.code, err.message) == (NoInputError, ExitCode.NOINPUT, "cannot attach nope.png: No such file or directory")
    (tmp_path / "dir").mkdir()
    err = refused("dir")
    assert (err.code, err.message) == (66, "cannot attach dir: it is a folder")
    err = refused("")
    assert (err.code, err.message) == (65, "cannot attach an empty path")


def test_unreadable_file_is_exit_66() -> None:
    def denied(path: str) -> BinaryIO:
        raise PermissionError(13, "Permission denied", path)

    err = refused("secret.txt", Sources(opener=denied))
    assert (err.code, err.message) == (66, "cannot attach secret.txt: Permission denied")


class Failing(io.RawIOBase):
    """A stream whose read fails after its first bytes (a bad disk, a vanished mount)."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.first:
            raise OSError(5, "Input/output error")
        n = min(len(buffer), len(self.first))
        buffer[:n] = self.first[:n]
        self.first = self.first[n:]
        return n


def test_a_read_error_is_exit_66() -> None:
    err = refused("disk.png", Sources(opener=lambda path: Failing(PNG)))  # type: ignore[arg-type,return-value]
    assert (err.code, err.message) == (66, "cannot attach disk.png: Input/output error")


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"ab\xffcd", "invalid UTF-8 at byte 2"),
        (b"text then a cut \xc3", "invalid UTF-8 at byte 16"),
        (b"\x00\x01\x02\x03", "it holds NUL bytes"),
        ("utf-16".encode("utf-16-le"), "it holds NUL bytes"),
        (b"%PDF-1.7\n\xe2\xe3\xcf\xd3", "invalid UTF-8 at byte 9"),
        (b"x" * (3 * 65536 + 20) + b"\xff", f"invalid UTF-8 at byte {3 * 65536 + 20}"),
    ],
)
def test_neither_image_nor_text_is_exit_65(data: bytes, why: str) -> None:
    Path("blob.png").write_bytes(data)
    err = refused("blob.png")
    assert (type(err), err.code) == (InputError, 65)
    assert err.message == f"cannot attach blob.png: neither a PNG, JPEG, GIF or WebP image nor UTF-8 text ({why})"
    assert err.hint == "attach images as PNG, JPEG, GIF or WebP, and text files as UTF-8"


def test_a_character_split_across_reads_is_decoded() -> None:
    data = b"a" * (3 * 65536 + 11) + "é☃".encode() * 3
    Path("t.txt").write_bytes(data)
    assert load("t.txt").part["text"] == '<file name="t.txt">\n' + data.decode() + "\n</file>"


def test_image_only_refuses_text() -> None:
    Path("x.png").write_text("not really")
    err = refused("x.png", image_only=True)
    assert (err.code, err.message) == (65, "cannot attach x.png: not a PNG, JPEG, GIF or WebP image")


def test_detail_must_be_known() -> None:
    with pytest.raises(UsageError) as info:
        Sources(detail="medium")
    assert info.value.message == "image detail must be one of low, high, auto, got 'medium'"


# ---------------------------------------------------------------------------------------------
# Limits, bounded reads, FIFOs.


def sparse(path: str, head: bytes, size: int) -> None:
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)


def test_an_image_of_exactly_20_mb_is_accepted_and_encoded_exactly() -> None:
    sparse("big.png", PNG, attach.IMAGE_LIMIT)
    a = load("big.png")
    assert a.size == 20_000_000
    want = "data:image/png;base64," + base64.b64encode(PNG + bytes(20_000_000 - len(PNG))).decode()
    assert a.part == {"type": "image_url", "image_url": {"url": want}}


def test_an_image_over_20_mb_is_refused_before_it_is_read() -> None:
    sparse("big.jpg", JPEG, attach.IMAGE_LIMIT + 1)
    reads: list[int] = []

    def counting(path: str) -> BinaryIO:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 (load closes it)
        real = raw.read

        def read(n: int = -1) -> bytes:
            data = real(n)
            reads.append(len(data))
            return data

        raw.read = read  # type: ignore[method-assign]
        return raw

    err = refused("big.jpg", Sources(opener=counting))
    assert (err.code, err.message) == (
        65, "cannot attach big.jpg: the image is 20,000,001 bytes, over the 20 MB limit (20,000,000 bytes)")
    assert err.hint == "resize or compress it, or send it as an http(s) URL"
    assert sum(reads) == 12


def test_a_text_over_50_mb_is_refused_before_it_is_read() -> None:
    sparse("huge.log", b"log line\n", attach.BODY_LIMIT + 1)
    err = refused("huge.log")
    assert (err.code, err.message) == (
        65, "cannot attach huge.log: the text is 50,000,001 bytes, over the 50 MB limit of a whole request "
        "(50,000,000 bytes)")


class Endless(io.RawIOBase):
    """An endless stream (a device, a producer that never stops) that counts what was read."""

    def __init__(self, head: bytes, fill: bytes) -> None:
        self.head, self.fill, self.read_bytes = head, fill, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        data = (self.head + self.fill * (n // len(self.fill) + 1))[:n]
        self.head = self.head[n:]
        buffer[:n] = data
        self.read_bytes += n
        return n


def test_an_endless_image_stream_is_read_to_the_limit_plus_one_byte() -> None:
    stream = Endless(PNG, b"\x07")
    err = refused("-", Sources(stdin=stream))  # type: ignore[arg-type]
    assert (err.code, err.message) == (
        65, "cannot attach stdin: the image is over the 20 MB limit (20,000,000 bytes)")
    assert stream.read_bytes == attach.IMAGE_LIMIT + 1


def test_an_endless_text_stream_is_read_to_the_limit_plus_one_byte() -> None:
    stream = Endless(b"", b"y\n")
    err = refused("-", Sources(stdin=stream))  # type: ignore[arg-type]
    assert (err.code, err.message) == (
        65, "cannot attach stdin: the text is over the 50 MB limit of a whole request (50,000,000 bytes)")
    assert stream.read_bytes == attach.BODY_LIMIT + 1


def test_endless_devices_are_refused_quickly() -> None:
    err = refused("/dev/zero")
    assert err.message.endswith("(it holds NUL bytes)")


@contextmanager
def writer(fd_or_path: int | str, pieces: list[bytes]) -> Iterator[None]:
    """Write the pieces one by one from another thread, as a slow producer would."""

    def run() -> None:
        fd = os.open(fd_or_path, os.O_WRONLY) if isinstance(fd_or_path, str) else fd_or_path
        with os.fdopen(fd, "wb", buffering=0) as out:
            for piece in pieces:
                out.write(piece)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join(5)


def test_a_fifo_is_read_as_it_comes(tmp_path: Path) -> None:
    os.mkfifo("pipe")
    body = b"x" * 300_000
    with writer(str(tmp_path / "pipe"), [PNG[:3], PNG[3:10], PNG[10:], body]):
        a = load("pipe")
    assert a.size == len(PNG) + len(body)
    assert a.part["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG + body).decode()


def test_process_substitution_path_works() -> None:
    read_end, write_end = os.pipe()
    try:
        with writer(write_end, [b"from ", b"a command\n"]):
            a = load(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert a.part == {"type": "text", "text": f'<file name="/dev/fd/{read_end}">\nfrom a command\n\n</file>'}


def test_images_of_any_length_encode_like_base64() -> None:
    for extra in (0, 1, 2, 3 * 65536 - 12, 3 * 65536 - 11, 3 * 65536 * 2 + 5):
        data = JPEG + bytes(range(256)) * (extra // 256) + bytes(range(extra % 256))
        a = load("-", Sources(stdin=io.BytesIO(data)))
        assert a.part["image_url"]["url"] == "data:image/jpeg;base64," + base64.b64encode(data).decode()
        assert a.size == len(data)


# ---------------------------------------------------------------------------------------------
# The user message and the request size.


def test_content_stays_a_string_without_attachments() -> None:
    assert attach.user_content("hi", []) == "hi"


def test_content_is_the_text_then_the_attachments_in_order() -> None:
    Path("a.txt").write_text("A\n")
    Path("b.webp").write_bytes(WEBP)
    parts = attach.user_content("Compare", load_all(["a.txt", "b.webp", "https://h/c.png"]))
    assert parts == [
        {"type": "text", "text": "Compare"},
        {"type": "text", "text": '<file name="a.txt">\nA\n\n</file>'},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRhoAAABXRUJQVlA4TA0AAAA="}},
        {"type": "image_url", "image_url": {"url": "https://h/c.png"}},
    ]


def test_add_parts_to_a_message() -> None:
    url = load("https://h/c.png")
    assert attach.add_parts({"role": "user", "content": "q"}, [url]) == {
        "role": "user", "content": [{"type": "text", "text": "q"}, url.part]}
    assert attach.add_parts({"role": "user", "content": [{"type": "text", "text": "q"}]}, [url, url]) == {
        "role": "user", "content": [{"type": "text", "text": "q"}, url.part, url.part]}
    message = {"role": "user", "content": "q"}
    assert attach.add_parts(message, []) == message


def test_request_size_limit_names_the_attachments() -> None:
    Path("a.txt").write_text("A")
    atts = load_all(["a.txt", "https://h/c.png", "-"], Sources(stdin=io.BytesIO(b"s")))
    attach.check_request_size(50_000_000, atts)
    with pytest.raises(InputError) as info:
        attach.check_request_size(50_000_001, atts)
    assert (info.value.code, info.value.message) == (
        65, "the request would be 50,000,001 bytes, over the 50 MB limit (50,000,000 bytes); "
        "attached: a.txt, https://h/c.png, stdin")
    assert info.value.hint == "attach fewer or smaller files, or send images as http(s) URLs"


# ---------------------------------------------------------------------------------------------
# The body: size and bytes without copies, dry-run shortening.


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_encode_body_is_json_dumps_byte_for_byte(value: Any) -> None:
    want = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert payload.encode_body(value) == want
    assert payload.encoded_size(value) == len(want)


def test_encode_body_slices_long_strings_without_changing_them() -> None:
    slice_ = 1 << 20
    long = "a" * (slice_ - 1) + 'é"\n\u2028\U0001f389' + "\\" * slice_
    body = {"messages": [{"content": [{"text": long}, {"url": "data:image/png;base64," + "A" * 3 * slice_}]}]}
    want = json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
    assert payload.encode_body(body) == want
    assert payload.encoded_size(body) == len(want)


def test_encode_body_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError):
        payload.encode_body({"t": float("nan")})
    with pytest.raises(TypeError):
        payload.encode_body({"t": {1, 2}})


def test_dry_run_shortens_base64_payloads_only() -> None:
    b100 = base64.b64encode(bytes(range(100))).decode()
    body = {
        "model": "gpt-5.2",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see data:image/png;base64," + b100},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b100, "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + base64.b64encode(bytes(49)).decode()}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + base64.b64encode(bytes(50)).decode()}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + base64.b64encode(bytes(48)).decode()}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + "A" * 65}},
            {"type": "image_url", "image_url": {"url": "data:text/plain;charset=utf-8;base64," + b100}},
            {"type": "image_url", "image_url": {"url": "https://h/x.png"}},
        ]}],
        "seed": 7,
    }
    before = json.dumps(body)
    shown = payload.shorten_payloads(body)
    assert json.dumps(body) == before  # a copy: the body itself is untouched
    assert shown == {
        "model": "gpt-5.2",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "see data:image/png;base64," + b100},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,<base64: 100 bytes>", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64,<base64: 49 bytes>"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64,<base64: 50 bytes>"}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + "A" * 64}},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64," + "A" * 65}},
            {"type": "image_url", "image_url": {"url": "data:text/plain;charset=utf-8;base64,<base64: 100 bytes>"}},
            {"type": "image_url", "image_url": {"url": "https://h/x.png"}},
        ]}],
        "seed": 7,
    }


def test_dry_run_size_is_the_attached_file_size() -> None:
    sparse("shot.png", PNG, 5_000_001)
    part = load("shot.png").part
    assert payload.shorten_payloads(part) == {
        "type": "image_url", "image_url": {"url": "data:image/png;base64,<base64: 5000001 bytes>"}}
