"""Prompt composition rules of `ask` (SPEC §2), as pure functions."""

from __future__ import annotations

import pytest

from evocli.errors import ExitCode, InputError
from evocli.messages import ask_messages, compose_prompt


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["Summarize", "this"], None, "Summarize this"),
        (["Summarize"], "line 1\nline 2\n", "line 1\nline 2\n\nSummarize"),
        ([], "only stdin\n", "only stdin"),
        (["only", "args"], "", "only args"),
        (["args"], "  \n\n", "args"),
        (["a  b"], None, "a  b"),
        (["x"], "keep\r\n\r\n", "keep\n\nx"),
        (["x"], "  indented\n  text\n", "  indented\n  text\n\nx"),
        ([], "naïve ☃\n", "naïve ☃"),
    ],
)
def test_compose_prompt(args: list[str], stdin: str | None, expected: str) -> None:
    assert compose_prompt(args, stdin) == expected


@pytest.mark.parametrize(("args", "stdin"), [([], None), ([], ""), (["  "], "\n"), ([" ", "\t"], None)])
def test_empty_prompt_is_exit_65(args: list[str], stdin: str | None) -> None:
    with pytest.raises(InputError) as info:
        compose_prompt(args, stdin)
    assert info.value.code == ExitCode.DATAERR == 65
    assert info.value.message == "the prompt is empty"


def test_nothing_is_truncated() -> None:
    big = "x" * 2_000_000
    assert compose_prompt(["tail"], big) == big + "\n\ntail"


def test_ask_messages() -> None:
    assert ask_messages("hi", None) == [{"role": "user", "content": "hi"}]
    assert ask_messages("hi", "be terse") == [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "hi"},
    ]


def test_compose_prompt_refuses_undecodable_arguments() -> None:
    with pytest.raises(InputError) as info:
        compose_prompt(["ok", "\udc80"], "piped")
    assert info.value.message == "the prompt is not valid UTF-8 text (argument 2, byte 0)"
