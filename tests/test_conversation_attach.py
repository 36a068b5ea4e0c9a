"""Conversation files with attachments: text:/image:/file: parts, their errors, their resolution
relative to the file at each run, and saving sent turns as references that round-trip."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evocli import attach
from evocli.conversation import parse, placeholders, prepare, reference_turn, turn
from evocli.errors import EvocliError, InputError, UsageError
from evocli.yamlappend import append_turns

GIF = b"GIF89a\x01\x00\x01\x00"
GIF_URL = "data:image/gif;base64,R0lGODlhAQABAA=="


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


CONV = """model: gpt-5.2
vars: {who: Ann}
messages:
  - role: user
    content:
      - text: "{{ who }} asks: what is wrong here?"
      - image: shots/page.jpg
      - image: https://example.com/chart.png
        detail: low
      - file: logs/run.log
      - {type: text, text: "typed {{ who }}"}
      - {type: image_url, image_url: {url: "https://example.com/b.png"}}
  - role: assistant
    content: The button overlaps the footer.
"""


def write_tree(root: Path) -> None:
    (root / "conv" / "shots").mkdir(parents=True)
    (root / "conv" / "logs").mkdir()
    (root / "conv" / "shots" / "page.jpg").write_bytes(GIF)  # a GIF, whatever its name says
    (root / "conv" / "logs" / "run.log").write_text("step 1 ok\n{{ who }} is not filled in a file\n")
    (root / "conv" / "review.yaml").write_text(CONV)


def test_short_parts_are_kept_as_written_when_parsed() -> None:
    c = parse(CONV, "review.yaml")
    assert c.messages[0]["content"] == [
        {"text": "{{ who }} asks: what is wrong here?"},
        {"image": "shots/page.jpg"},
        {"image": "https://example.com/chart.png", "detail": "low"},
        {"file": "logs/run.log"},
        {"type": "text", "text": "typed {{ who }}"},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]
    assert placeholders(c) == ["who"]


def test_parts_are_resolved_relative_to_the_file(tmp_path: Path) -> None:
    write_tree(tmp_path)
    c = parse((tmp_path / "conv" / "review.yaml").read_text(), "conv/review.yaml")
    sent = prepare(c, {}, None).messages
    assert sent[0] == {"role": "user", "content": [
        {"type": "text", "text": "Ann asks: what is wrong here?"},
        {"type": "image_url", "image_url": {"url": GIF_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/chart.png", "detail": "low"}},
        {"type": "text", "text": '<file name="logs/run.log">\nstep 1 ok\n{{ who }} is not filled in a file\n\n</file>'},
        {"type": "text", "text": "typed Ann"},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
    ]}
    assert sent[1] == {"role": "assistant", "content": "The button overlaps the footer."}
    loaded = prepare(c, {}, None).attachments
    assert [(a.source, a.path, a.kind, a.size) for a in loaded] == [
        ("shots/page.jpg", "conv/shots/page.jpg", "image", 10),
        ("https://example.com/chart.png", None, "url", 0),
        ("logs/run.log", "conv/logs/run.log", "text", 44),
    ]


def test_attachments_are_read_again_at_each_run(tmp_path: Path) -> None:
    write_tree(tmp_path)
    c = parse(CONV, "conv/review.yaml")
    first = prepare(c, {}, None).messages[0]["content"][3]["text"]
    (tmp_path / "conv" / "logs" / "run.log").write_text("step 2\n")
    second = prepare(c, {}, None).messages[0]["content"][3]["text"]
    assert (first.count("\n"), second) == (4, '<file name="logs/run.log">\nstep 2\n\n</file>')


def test_a_base_folder_and_a_reader_can_be_given() -> None:
    files = {"in/a.txt": b"A", "in/b.png": GIF}
    opened: list[str] = []

    def reader(path: str) -> BinaryIO:
        opened.append(path)
        return io.BytesIO(files[path])

    c = parse("- role: user\n  content: [{text: hi}, {file: a.txt}, {image: b.png, detail: high}]\n", "x.yaml")
    sent = prepare(c, {}, None, attach.Sources(base="in", opener=reader)).messages
    assert sent == [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "text", "text": '<file name="a.txt">\nA\n</file>'},
        {"type": "image_url", "image_url": {"url": GIF_URL, "detail": "high"}},
    ]}]
    assert opened == ["in/a.txt", "in/b.png"]


def test_a_conversation_from_stdin_reads_relative_to_the_current_folder(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("N")
    c = parse("- role: user\n  content: [{file: n.txt}]\n", "<stdin>")
    assert prepare(c, {}, None).messages[0]["content"] == [
        {"type": "text", "text": '<file name="n.txt">\nN\n</file>'}]


def test_literal_messages_are_not_filled_but_still_resolved(tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("N")
    c = parse("- role: user\n  literal: true\n  content: [{text: '{{ x }}'}, {file: n.txt}]\n", "f.yaml")
    assert prepare(c, {}, None).messages == [{"role": "user", "content": [
        {"type": "text", "text": "{{ x }}"}, {"type": "text", "text": '<file name="n.txt">\nN\n</file>'}]}]


def test_short_parts_without_a_file_to_read_need_nothing() -> None:
    def never(path: str) -> BinaryIO:
        raise AssertionError("nothing to open")

    c = parse("- role: user\n  content: [{text: a}, {image: 'https://h/x.png'}]\n", "f.yaml")
    assert prepare(c, {}, None, attach.Sources(opener=never)).messages[0]["content"] == [
        {"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "https://h/x.png"}}]


@pytest.mark.parametrize(
    ("files", "content", "code", "message"),
    [
        ({}, "[{text: a}, {image: shots/x.png}]", 66,
         "conv/f.yaml: messages[0]: content[1]: cannot attach shots/x.png (conv/shots/x.png): No such file or directory"),
        ({"conv/t.png": b"text, not an image"}, "[{image: t.png}]", 65,
         "conv/f.yaml: messages[0]: content[0]: cannot attach t.png (conv/t.png): not a PNG, JPEG, GIF or WebP image"),
        ({"conv/b.bin": b"\x00\x01"}, "[{file: b.bin}]", 65,
         "conv/f.yaml: messages[0]: content[0]: cannot attach b.bin (conv/b.bin): neither a PNG, JPEG, GIF or WebP "
         "image nor UTF-8 text (it holds NUL bytes)"),
    ],
)
def test_a_part_that_cannot_be_read_names_the_file_message_and_part(
    tmp_path: Path, files: dict[str, bytes], content: str, code: int, message: str
) -> None:
    (tmp_path / "conv").mkdir()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    c = parse(f"- role: user\n  content: {content}\n", "conv/f.yaml")
    with pytest.raises(EvocliError) as info:
        prepare(c, {}, None)
    assert (info.value.code, info.value.message) == (code, message)


ERRORS = [
    ("not a mapping", "      - hello\n", "f.yaml:4: messages[0]: content[0]: expected a mapping with text:, image:, file: or type:, got text"),
    ("empty mapping", "      - {}\n", "f.yaml:4: messages[0]: content[0]: a part needs one of text:, image:, file: (or type:)"),
    ("two kinds", "      - text: a\n        image: b.png\n",
     "f.yaml:4: messages[0]: content[0]: a part needs only one of text:, image:, file: (or type:)"),
    ("detail on a file", "      - file: a.txt\n        detail: low\n",
     "f.yaml:5: messages[0]: content[0]: unknown key 'detail' in a file: part"),
    ("unknown key", "      - image: a.png\n        alt: x\n", "f.yaml:5: messages[0]: content[0]: unknown key 'alt' in an image: part"),
    ("image number", "      - image: 42\n", "f.yaml:4: messages[0]: content[0]: image: must be a path or URL, got a number"),
    ("text list", "      - text: [a]\n", "f.yaml:4: messages[0]: content[0]: text: must be text, got a list"),
    ("file null", "      - file:\n", "f.yaml:4: messages[0]: content[0]: file: must be a path, got nothing (null)"),
    ("empty path", "      - file: ''\n", "f.yaml:4: messages[0]: content[0]: file: must not be empty"),
    ("stdin", "      - image: '-'\n", "f.yaml:4: messages[0]: content[0]: image: - (stdin) cannot be attached from a conversation file"),
    ("file URL", "      - file: https://h/x.txt\n", "f.yaml:4: messages[0]: content[0]: file: takes a path; write a URL as image:"),
    ("bad detail", "      - image: a.png\n        detail: medium\n",
     "f.yaml:5: messages[0]: content[0]: detail must be one of low, high, auto"),
]


@pytest.mark.parametrize(("part", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_parts_name_file_line_and_index(part: str, message: str) -> None:
    text = "messages:\n  - role: user\n    content:\n" + part
    with pytest.raises(InputError) as info:
        parse(text, "f.yaml")
    assert (info.value.code, info.value.message) == (65, message)


# ---------------------------------------------------------------------------------------------
# Saving sent turns as references.


def loaded(sources: list[str], stdin: bytes | None = None, detail: str | None = None) -> list[attach.Attachment]:
    stream = io.BytesIO(stdin) if stdin is not None else None
    return attach.load_all(sources, attach.Sources(stdin=stream, detail=detail))


def test_reference_turn_rewrites_paths_for_the_files_folder(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "a.png").write_bytes(GIF)
    (tmp_path / "notes.txt").write_text("n")
    atts = loaded(["shots/a.png", "notes.txt", "https://h/c.png", str(tmp_path / "notes.txt")], detail="low")
    assert reference_turn("Why?", atts, "convs") == {"role": "user", "content": [
        {"text": "Why?"},
        {"image": os.path.join("..", "shots", "a.png"), "detail": "low"},
        {"file": os.path.join("..", "notes.txt")},
        {"image": "https://h/c.png", "detail": "low"},
        {"file": str(tmp_path / "notes.txt")},
    ]}
    assert reference_turn("Why?", atts[:2], "")["content"][1:] == [
        {"image": "shots/a.png", "detail": "low"}, {"file": "notes.txt"}]


def test_reference_turn_without_attachments_is_a_plain_turn() -> None:
    assert reference_turn("a {{ b }}", [], "") == turn("user", "a {{ b }}") == {
        "role": "user", "literal": True, "content": "a {{ b }}"}


def test_text_from_stdin_is_saved_as_the_text_that_was_sent() -> None:
    saved = reference_turn("Summarise {{ nothing }}", loaded(["-"], stdin=b"log\n"), "")
    assert saved == {"role": "user", "literal": True, "content": [
        {"text": "Summarise {{ nothing }}"}, {"text": '<file name="stdin">\nlog\n\n</file>'}]}


def test_an_image_from_stdin_cannot_be_saved() -> None:
    with pytest.raises(UsageError) as info:
        reference_turn("x", loaded(["-"], stdin=GIF), "")
    assert (info.value.code, info.value.message, info.value.hint) == (
        2, "an image read from stdin cannot be saved in a conversation file",
        "save it to a file and attach that: only a reference to it is saved")


def test_a_saved_turn_round_trips_and_is_sent_again_the_same(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(GIF)
    (tmp_path / "log.txt").write_text("line 1\nline 2\n")
    atts = loaded(["a.png", "log.txt"], detail="high")
    sent = {"role": "user", "content": attach.user_content("What failed?\nBe brief.", atts)}
    saved = [reference_turn("What failed?\nBe brief.", atts, ""), turn("assistant", "Step 2.")]
    base = "# review\nmessages:\n  - role: user\n    content: hi  # first\n  - role: assistant\n    content: hello\n"
    text, kept = append_turns(base, "conv.yaml", saved)
    assert (text, kept) == (base + (
        "  - role: user\n"
        "    content:\n"
        "    - text: |-\n"
        "        What failed?\n"
        "        Be brief.\n"
        "    - image: a.png\n"
        "      detail: high\n"
        "    - file: log.txt\n"
        "  - role: assistant\n"
        "    content: Step 2.\n"), True)
    again = prepare(parse(text, "conv.yaml"), {}, None).messages
    assert again[-2:] == [sent, {"role": "assistant", "content": "Step 2."}]


BASES = [
    "messages:\n  - role: user\n    content: hi\n",
    "- role: user\n  content: hi",
    "messages: [{role: user, content: hi}]\n",
    "system: s  # only a system prompt\n",
]
TRICKY = st.text(st.sampled_from(list(" \t\n\r-:#'\"{}[]|>&*!%@`,?.ab\u2028\x85")))
PATHS = st.one_of(st.text(min_size=1), TRICKY).filter(lambda p: p != "-" and not attach.is_url(p) and p != "")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(BASES), st.one_of(st.text(), TRICKY), PATHS, st.sampled_from([None, "low"]))
def test_reference_turns_round_trip_in_any_layout(base: str, text: str, path: str, detail: str | None) -> None:
    image: dict[str, Any] = {"image": path} if detail is None else {"image": path, "detail": detail}
    saved = {"role": "user", "content": [{"text": text}, image, {"file": path}]}
    out, kept = append_turns(base, "f", [saved, turn("assistant", text)])
    assert kept
    assert parse(out, "f").messages[-2:] == [saved, turn("assistant", text)]
