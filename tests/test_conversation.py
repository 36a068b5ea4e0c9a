"""Conversation files as pure functions: loading, validation, placeholders, stdin, appending."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evocli import conversation as conv
from evocli.conversation import Conversation, parse, parse_vars, prepare, turn
from evocli.errors import ExitCode, InputError, UsageError
from evocli.yamlappend import append_turns

FIXTURES = Path(__file__).parent / "fixtures" / "chat"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def error_of(text: str, name: str = "review.yaml") -> str:
    with pytest.raises(InputError) as info:
        parse(text, name)
    assert info.value.code == ExitCode.DATAERR == 65
    return info.value.message


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


# ---------------------------------------------------------------------------------------------
# The format.


def test_mapping_form() -> None:
    c = parse(fixture("review.yaml"), "review.yaml")
    assert c == Conversation(
        "review.yaml",
        model="gpt-5.2",
        system="You review diffs for the {{ team }} team.\nAnswer in {{ lang }}, as a short list of concrete problems.\n",
        params={"temperature": 0.2, "reasoning_effort": "low"},
        vars={"team": "platform", "lang": "English"},
        messages=[user('Review this change. Say "LGTM" when there is nothing to fix.\n\n{{ stdin }}\n')],
    )
    assert c.overrides().model == "gpt-5.2"
    assert c.overrides().params == {"temperature": 0.2, "reasoning_effort": "low"}


def test_a_schema_is_kept_as_written_with_its_line() -> None:
    c = parse("messages: [{role: user, content: x}]\nschema:\n  type: object\n", "c.yaml")
    assert (c.schema, c.schema_where) == ({"type": "object"}, "c.yaml:3: schema")
    c = parse("schema: name, age int\nmessages: [{role: user, content: x}]\n", "c.yaml")
    assert (c.schema, c.schema_where) == ("name, age int", "c.yaml:1: schema")


def test_bare_list_form() -> None:
    c = parse(fixture("list_form.yaml"), "list_form.yaml")
    assert (c.model, c.system, c.params, c.vars) == (None, None, {}, {})
    assert [m["role"] for m in c.messages] == ["system", "user", "assistant", "user"]


def test_every_role_and_part_kind() -> None:
    text = """messages:
  - {role: system, content: s}
  - {role: developer, content: d}
  - role: user
    content:
      - {type: text, text: "What is in this picture?"}
      - {type: image_url, image_url: {url: "https://example.com/a.png", detail: low}}
  - role: assistant
    content: null
    tool_calls: [{id: c1, type: function, function: {name: f, arguments: "{}"}}]
  - {role: tool, tool_call_id: c1, content: "42"}
  - {role: user, name: ann, content: thanks}
"""
    c = parse(text, "f.yaml")
    assert [m["role"] for m in c.messages] == ["system", "developer", "user", "assistant", "tool", "user"]
    assert c.messages[2]["content"][1] == {
        "type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
    assert c.messages[3]["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}


def test_anchors_and_merge_keys_are_plain_yaml() -> None:
    text = """messages:
  - &ask
    role: user
    content: &q Same question
  - {role: assistant, content: "yes"}
  - <<: *ask
    name: ann
  - {role: user, content: *q}
"""
    c = parse(text, "f")
    assert c.messages[2:] == [{"role": "user", "content": "Same question", "name": "ann"}, user("Same question")]


ERRORS = [
    ("bad_role", fixture("bad_role.yaml"),
     "review.yaml:7: messages[2]: role must be one of system, developer, user, assistant, tool"),
    ("role missing", "messages:\n  - content: hi\n", "review.yaml:2: messages[0]: role is missing"),
    ("content missing", "- role: user\n", "review.yaml:1: messages[0]: content is missing"),
    ("content null", "- role: user\n  content:\n", "review.yaml:2: messages[0]: content is missing"),
    ("content number", "- role: user\n  content: 42\n",
     "review.yaml:2: messages[0]: content must be text or a list of parts, got a number"),
    ("unknown message key", "- role: user\n  contnet: hi\n", "review.yaml:2: messages[0]: unknown key 'contnet'"),
    ("message not a mapping", "messages:\n  - hello\n",
     "review.yaml:2: messages[0]: expected a mapping with role and content, got text"),
    ("bad part type", "- role: user\n  content:\n    - {type: text, text: a}\n    - {type: audio}\n",
     "review.yaml:4: messages[0]: content[1]: type must be one of text, image_url"),
    ("text part without text", "- role: user\n  content: [{type: text}]\n",
     "review.yaml:2: messages[0]: content[0]: a text part needs text:"),
    ("image part without url", "- role: user\n  content: [{type: image_url, image_url: x}]\n",
     "review.yaml:2: messages[0]: content[0]: an image_url part needs image_url: {url: ...}"),
    ("literal not bool", "- {role: user, content: x, literal: 'yes'}\n",
     "review.yaml:1: messages[0]: literal must be true or false"),
    ("unknown top key", "model: x\nmesages: []\n", "review.yaml:2: unknown key 'mesages'"),
    ("messages not a list", "messages: hello\n", "review.yaml:1: messages must be a list, got text"),
    ("model not text", "model: [a]\nmessages: []\n", "review.yaml:1: model must be a model id, got a list"),
    ("system not text", "system: {a: 1}\n", "review.yaml:1: system must be text, got a mapping"),
    ("params not mapping", "params: [1]\n", "review.yaml:1: params must be a mapping of body fields, got a list"),
    ("params stream", "params:\n  seed: 1\n  stream: true\n",
     "review.yaml:3: params cannot set 'stream': use --stream / --no-stream"),
    ("params messages", "params: {messages: []}\n", "review.yaml:1: params cannot set 'messages': they come from the prompt, the conversation file or the batch line"),
    ("params date", "params:\n  seed: 2026-01-01\n",
     "review.yaml:2: params.seed: a date is not a JSON value (quote it to send it as text)"),
    ("vars bad name", "vars:\n  my var: 1\n", "review.yaml:2: vars: 'my var' is not a placeholder name (letters, digits and _)"),
    ("vars bool", "vars:\n  flag: yes\n", "review.yaml:2: vars.flag must be text or a number, got true/false (quote it)"),
    ("top scalar", "just text\n",
     "review.yaml:1: expected a mapping (model, system, params, vars, schema, messages) or a list of messages, got text"),
    ("empty file", "", "review.yaml: the file is empty"),
    ("only a comment", "# nothing\n", "review.yaml: the file is empty"),
    ("duplicate top key", "messages: []\nsystem: a\nmessages: []\n", "review.yaml:3: duplicate key 'messages'"),
    ("duplicate message key", "- role: user\n  content: a\n  content: b\n", "review.yaml:3: duplicate key 'content'"),
    ("two documents", "- {role: user, content: a}\n---\n- {role: user, content: b}\n",
     "review.yaml:2: a second YAML document starts here; a conversation file holds one"),
    ("python tag", fixture("python_tag.yaml"),
     "review.yaml:4: tag !!python/object/apply:os.system is not allowed: only plain YAML data is loaded"),
    ("python object", "messages: !!python/object:collections.OrderedDict {}\n",
     "review.yaml:1: tag !!python/object:collections.OrderedDict is not allowed: only plain YAML data is loaded"),
    ("python name", "model: !!python/name:os.system\n",
     "review.yaml:1: tag !!python/name:os.system is not allowed: only plain YAML data is loaded"),
    ("custom tag", "model: !secret x\n", "review.yaml:1: tag !secret is not allowed: only plain YAML data is loaded"),
    ("recursive alias", fixture("recursive_alias.yaml"), "review.yaml:2: a recursive alias is not allowed"),
]


@pytest.mark.parametrize(("text", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_file_line_and_message(text: str, message: str) -> None:
    assert error_of(text) == message


# libyaml and PyYAML word syntax errors differently: the file and line are what is promised.
SYNTAX = [
    ("messages:\n  - role: user\n   content: x\n", "review.yaml:3: "),
    ("messages: [\n", "review.yaml:2: "),
    ("messages: *nope\n", "review.yaml:1: found undefined alias"),
    ("a: 'x\n", "review.yaml:2: "),
    ("- a\nb: c\n", "review.yaml:2: "),
    ("model: \x07\n", "review.yaml"),
    ("[" * 5000 + "]" * 5000, "review.yaml"),
]


@pytest.mark.parametrize(("text", "prefix"), SYNTAX)
@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_syntax_errors_name_file_and_line(text: str, prefix: str, loader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    if loader == "python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML is built without libyaml")
    message = error_of(text)
    assert message.startswith(prefix)
    assert "\n" not in message


def test_python_tag_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.iterdir())
    error_of(fixture("python_tag.yaml"))
    assert sorted(tmp_path.iterdir()) == before


def test_alias_bomb_is_refused_fast_in_bounded_memory() -> None:
    text = fixture("alias_bomb.yaml")
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(InputError) as info:
            parse(text, "alias_bomb.yaml")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == 65
    assert info.value.message == (
        "alias_bomb.yaml: its aliases would expand it to 30,563,844,577 nodes and characters, "
        "beyond the limit of 1,001,140: refused")
    assert elapsed < 1.0
    assert peak < 10_000_000


def test_a_long_anchored_text_may_be_reused() -> None:
    text = "x" * 3_000_000
    doc = f"system: &doc {text}\nmessages:\n" + "  - {role: user, content: *doc}\n" * 5
    assert len(parse(doc, "f").messages) == 5
    with pytest.raises(InputError):
        parse(doc + "  - {role: user, content: *doc}\n" * 6, "f")


def test_modest_aliases_are_fine() -> None:
    shared = "x" * 10_000
    text = f"vars: {{p: &p {shared}}}\nmessages:\n" + "".join(
        f"  - {{role: user, content: *p}}\n  - {{role: assistant, content: 'ok {i}'}}\n" for i in range(40))
    assert len(parse(text, "f").messages) == 80


# ---------------------------------------------------------------------------------------------
# Placeholders and stdin.


def conversation_of(text: str) -> Conversation:
    return parse(text, "review.yaml")


def test_placeholders_are_filled_from_vars_and_var_wins() -> None:
    c = conversation_of(fixture("review.yaml"))
    p = prepare(c, {"lang": "French"}, "diff --git a b\n+x\n")
    assert p.messages == [
        {"role": "system",
         "content": "You review diffs for the platform team.\nAnswer in French, as a short list of concrete problems.\n"},
        user('Review this change. Say "LGTM" when there is nothing to fix.\n\ndiff --git a b\n+x\n'),
    ]
    assert p.new_turns == []


@pytest.mark.parametrize("written", ["{{x}}", "{{ x }}", "{{   x\t}}"])
def test_placeholder_spacing(written: str) -> None:
    c = conversation_of(f"- role: user\n  content: 'a {written} b'\n")
    assert prepare(c, {"x": "X"}, None).messages == [user("a X b")]


def test_text_parts_are_filled_and_images_are_not() -> None:
    c = conversation_of("""- role: user
  content:
    - {type: text, text: "Describe {{ what }}"}
    - {type: image_url, image_url: {url: "https://x/{{ what }}.png"}}
""")
    assert prepare(c, {"what": "it"}, None).messages[0]["content"] == [
        {"type": "text", "text": "Describe it"},
        {"type": "image_url", "image_url": {"url": "https://x/{{ what }}.png"}},
    ]


def test_every_missing_name_is_listed_once_in_order() -> None:
    c = conversation_of("system: '{{ b }} {{ a }}'\nmessages:\n  - {role: user, content: '{{ a }} {{ c }} {{ known }}'}\n"
                        "vars: {known: k}\n")
    with pytest.raises(InputError) as info:
        prepare(c, {}, None)
    assert info.value.code == 65
    assert info.value.message == "review.yaml: undefined placeholders: b, a, c"
    assert info.value.hint == "give each a value with --var NAME=VALUE or under vars: in the file"


def test_missing_stdin_placeholder_hints_at_the_pipe() -> None:
    with pytest.raises(InputError) as info:
        prepare(conversation_of(fixture("review.yaml")), {}, None)
    assert info.value.message == "review.yaml: undefined placeholder: stdin"
    assert info.value.hint == ("give each a value with --var NAME=VALUE or under vars: in the file; "
                               "{{ stdin }} is filled from piped stdin")


def test_values_and_stdin_are_never_expanded() -> None:
    c = conversation_of("messages: [{role: user, content: '{{ a }} | {{ stdin }}'}]\nvars: {b: B}\n")
    p = prepare(c, {"a": "{{ b }}"}, "{{ a }} {{ b }}\n")
    assert p.messages == [user("{{ b }} | {{ a }} {{ b }}")]


def test_stdin_as_last_user_turn_is_never_expanded() -> None:
    c = conversation_of("- {role: user, content: 'hi {{ a }}'}\n")
    p = prepare(c, {"a": "A"}, "{{ a }}\n")
    assert p.messages == [user("hi A"), user("{{ a }}")]
    assert p.new_turns == [{"role": "user", "literal": True, "content": "{{ a }}"}]


def test_braces_that_are_not_placeholders_stay() -> None:
    text = "{{ .Values.x }} {{\"a\": 1}} {{ 9lives }} { {x} } {{}}"
    c = conversation_of(f"- role: user\n  content: '{text}'\n")
    assert prepare(c, {}, None).messages == [user(text)]


def test_literal_messages_are_sent_as_written() -> None:
    c = conversation_of("- {role: user, literal: true, content: 'keep {{ this }}'}\n"
                        "- {role: user, literal: false, content: 'fill {{ that }}'}\n")
    assert prepare(c, {"that": "T"}, None).messages == [user("keep {{ this }}"), user("fill T")]


def test_stdin_becomes_the_last_user_turn() -> None:
    c = conversation_of("system: Be terse.\nmessages:\n  - {role: user, content: Hi}\n  - {role: assistant, content: Hello}\n")
    p = prepare(c, {}, "notes line 1\nnotes line 2\n\n")
    assert p.messages[-1] == user("notes line 1\nnotes line 2")
    assert p.new_turns == [user("notes line 1\nnotes line 2")]


def test_system_only_file_plus_stdin_is_a_conversation() -> None:
    c = conversation_of("system: You summarize.\n")
    assert prepare(c, {}, "text\n").messages == [{"role": "system", "content": "You summarize."}, user("text")]


@pytest.mark.parametrize("stdin", [None, "", " \n\n"])
def test_no_messages_and_no_stdin_is_65(stdin: str | None) -> None:
    with pytest.raises(InputError) as info:
        prepare(conversation_of("system: You summarize.\nmessages: []\n"), {}, stdin)
    assert info.value.message == "review.yaml: the conversation has no messages"
    assert info.value.hint == "add a messages: list, or pipe the user's turn on stdin"


def test_parse_vars() -> None:
    assert parse_vars(["a=1", "b=x=y", "c=", "_d2={{ a }}"]) == {"a": "1", "b": "x=y", "c": "", "_d2": "{{ a }}"}
    for bad in ["a", "=1", "a b=1", "1a=2", "a-b=1"]:
        with pytest.raises(UsageError) as info:
            parse_vars([bad])
        assert info.value.code == 2
        assert info.value.message == f"--var expects NAME=VALUE with NAME made of letters, digits and _, got {bad!r}"


def test_turns_that_look_like_placeholders_are_marked_literal() -> None:
    assert turn("assistant", "plain") == assistant("plain")
    assert turn("assistant", "use {{ name }}") == {"role": "assistant", "literal": True, "content": "use {{ name }}"}
    assert turn("assistant", "{{ .Values }}") == assistant("{{ .Values }}")


# ---------------------------------------------------------------------------------------------
# Appending: the old text kept byte for byte, the new turns exact.

TURNS = [turn("user", "diff --git a/x b/x\n-old: 1\n+new: {{ x }}\n \n# comment\n"), turn("assistant", "Looks fine.")]
DIFF_TURN = """- role: user
  literal: true
  content: |
    diff --git a/x b/x
    -old: 1
    +new: {{ x }}
    <one space>
    # comment
- role: assistant
  content: Looks fine.
""".replace("<one space>", " ")  # the diff's context line for an empty line is one space


def indented(block: str, spaces: int) -> str:
    return "".join(" " * spaces + line if line != "\n" else line for line in block.splitlines(keepends=True))


LAYOUTS = [
    ("block list at the end",
     "# top\nmessages:\n  - role: user   # c\n    content: hi\n",
     "# top\nmessages:\n  - role: user   # c\n    content: hi\n" + indented(DIFF_TURN, 2)),
    ("indentless list followed by comments and keys",
     "messages:\n- role: user\n  content: hi\n# trailing comment\n\nvars: {a: 1}\n",
     "messages:\n- role: user\n  content: hi\n" + DIFF_TURN + "# trailing comment\n\nvars: {a: 1}\n"),
    ("bare list without a final newline",
     "- role: user\n  content: hi",
     "- role: user\n  content: hi\n" + DIFF_TURN),
    ("last content a literal block",
     "messages:\n  - role: user\n    content: |\n      a\n      b\n\n\n# end\n",
     "messages:\n  - role: user\n    content: |\n      a\n      b\n" + indented(DIFF_TURN, 2) + "\n\n# end\n"),
    ("last content a literal block that keeps its blank lines",
     "messages:\n- role: user\n  content: |+\n    a\n\n\n# end\n",
     "messages:\n- role: user\n  content: |+\n    a\n\n\n" + DIFF_TURN + "# end\n"),
    ("no messages key",
     "system: You review diffs.  # terse\n",
     "system: You review diffs.  # terse\nmessages:\n" + indented(DIFF_TURN, 2)),
    ("empty messages key",
     "system: s\nmessages:   # none yet\nvars: {}\n",
     "system: s\nmessages:   # none yet\n" + indented(DIFF_TURN, 2) + "vars: {}\n"),
    ("flow list",
     "messages: [{role: user, content: hi}]  # flow\n",
     'messages: [{role: user, content: hi}, {role: user, literal: true, content: "diff --git a/x b/x\\n-old: 1\\n'
     '+new: {{ x }}\\n \\n# comment\\n"}, {role: assistant, content: Looks fine.}]  # flow\n'),
    ("empty flow list",
     "messages: []\n",
     'messages: [{role: user, literal: true, content: "diff --git a/x b/x\\n-old: 1\\n'
     '+new: {{ x }}\\n \\n# comment\\n"}, {role: assistant, content: Looks fine.}]\n'),
    ("CRLF line ends",
     "messages:\r\n- role: user\r\n  content: hi\r\n",
     "messages:\r\n- role: user\r\n  content: hi\r\n" + DIFF_TURN.replace("\n", "\r\n")),
    ("byte order mark",
     "\ufeffmessages:\n- {role: user, content: hi}\n",
     "\ufeffmessages:\n- {role: user, content: hi}\n" + DIFF_TURN),
]


@pytest.mark.parametrize(("before", "after"), [x[1:] for x in LAYOUTS], ids=[x[0] for x in LAYOUTS])
def test_append_keeps_the_text_and_adds_the_turns(before: str, after: str) -> None:
    text, kept = append_turns(before, "f.yaml", TURNS)
    assert (text, kept) == (after, True)
    assert parse(text, "f.yaml").messages[-2:] == TURNS


def test_a_layout_without_room_is_rewritten_with_the_same_data() -> None:
    text, kept = append_turns("{system: x}  # flow mapping\n", "f.yaml", [assistant("a\nb")])
    assert not kept
    assert text == "system: x\nmessages:\n- role: assistant\n  content: |-\n    a\n    b\n"


def test_document_end_marker_is_kept() -> None:
    text, kept = append_turns("- {role: user, content: hi}\n...\n", "f", [assistant("yes")])
    assert (text, kept) == ("- {role: user, content: hi}\n- role: assistant\n  content: 'yes'\n...\n", True)


def test_append_refuses_an_invalid_file() -> None:
    with pytest.raises(InputError):
        append_turns("messages: [\n", "f.yaml", [assistant("x")])


@pytest.mark.parametrize(
    "content",
    [
        "", " ", "\n", "\n\n", "a\n", "a\n\n\n", "  leading spaces\nsecond", "\tleading tab\n", "trailing  \nspaces  ",
        "key: value", "- dash", "# hash", "'single'", '"double"', "{braces}", "[brackets]", "{{ x }}", "a: b\n- c\n# d",
        "yes", "null", "~", "123", "0x1F", "2026-01-01", "@at", "`tick`", "&anchor *alias !tag %pct |pipe >gt",
        "---\n...\n", "line\r\nwindows", "nel\x85ls\u2028ps\u2029", "bom\ufeff", "nul\x00bell\x07del\x7f",
"emoji 🎉 naïve ☃", "x" * 5000, "\n".join(f"line {i}" for i in range(300)),
    ],
)
def test_any_content_round_trips_exactly(content: str) -> None:
    base = "messages:\n  - role: user\n    content: hi\n"
    text, kept = append_turns(base, "f", [turn("user", content), turn("assistant", content)])
    assert kept and text.startswith(base)
    assert parse(text, "f").messages[1:] == [turn("user", content), turn("assistant", content)]


BASES = [
    "messages:\n  - role: user\n    content: hi\n",
    "- role: user\n  content: hi",
    "messages: [{role: user, content: hi}]\n",
    "system: s  # only a system prompt\n",
    "system: s\nmessages:\nvars: {}\n",
]
TRICKY = st.text(st.sampled_from(list(" \t\n\r-:#'\"{}[]|>&*!%@`,?.ab\u2028\x85")))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(BASES), st.one_of(st.text(), TRICKY), st.one_of(st.text(), TRICKY))
def test_round_trip_property(base: str, asked: str, answered: str) -> None:
    turns = [turn("user", asked), turn("assistant", answered)]
    text, kept = append_turns(base, "f", turns)
    assert kept
    assert parse(text, "f").messages[-2:] == turns
    rest = iter(text)
    assert all(ch in rest for ch in base)  # every old character still there, in order


def test_three_appends_read_as_written_plus_turns() -> None:
    text = fixture("journal.yaml")
    for i in range(3):
        text, kept = append_turns(text, "journal.yaml", [turn("user", f"note {i}"), turn("assistant", f"ok {i}")])
        assert kept
    assert text == fixture("journal.yaml").replace(
        '    content: "Journal started."\n',
        '    content: "Journal started."\n' + "".join(
            f"  - role: user\n    content: note {i}\n  - role: assistant\n    content: ok {i}\n" for i in range(3)))


def test_no_yaml_import_at_module_level() -> None:
    assert "yaml" not in vars(conv)
