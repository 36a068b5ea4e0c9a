"""`evocli chat-file` in-process against the local server: exact stdout, stderr, exit code, request, file."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from evocli import safefile
from tests.conftest import KEY, REPO, Run, child_env
from tests.server import FakeServer, Recorded, Reply, completion_body

Cli = Any
FIXTURES = Path(__file__).parent / "fixtures" / "chat"
ANSWER = "Hello from the test server."
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, Any]:
    return {"role": "system", "content": text}


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding copies of the fixtures, so errors show short relative names."""
    work = tmp_path / "work"
    work.mkdir()
    for item in FIXTURES.iterdir():
        shutil.copy(item, work / item.name)
    monkeypatch.chdir(work)
    return work


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------
# Sending a conversation.


def test_review_file_with_stdin_placeholder(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r: Run = cli(["chat-file", "review.yaml"], input="diff --git a/x b/x\n+new line\n")
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER + "\n", "")
    [req] = api_env.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.json == {
        "model": "gpt-5.2",
        "messages": [
            system("You review diffs for the platform team.\n"
                   "Answer in English, as a short list of concrete problems.\n"),
            user('Review this change. Say "LGTM" when there is nothing to fix.\n\n'
                 "diff --git a/x b/x\n+new line\n"),
        ],
        "temperature": 0.2,
        "reasoning_effort": "low",
    }


def test_bare_list_file(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "list_form.yaml"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER + "\n", "")
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [
        system("You answer in one word."), user("Capital of France?"), assistant("Paris."), user("And of Italy?")]}]


def test_var_wins_over_vars(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "--var", "lang=French", "--var", "team=a=b", "review.yaml"], input="d\n")
    assert r.exit_code == 0
    assert api_env.bodies[0]["messages"][0] == system(
        "You review diffs for the a=b team.\nAnswer in French, as a short list of concrete problems.\n")


def test_undefined_placeholders_are_65(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "q.yaml").write_text("system: '{{ tone }}'\nmessages:\n  - {role: user, content: '{{ question }} in {{ lang }}'}\n")
    r = cli(["chat-file", "--var", "lang=en", "q.yaml"])
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr == ("evocli: error: q.yaml: undefined placeholders: tone, question\n"
                        "hint: give each a value with --var NAME=VALUE or under vars: in the file\n")
    assert api_env.requests == []


def test_stdin_placeholder_without_stdin(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "--no-stdin", "review.yaml"], input="ignored\n")
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr == ("evocli: error: review.yaml: undefined placeholder: stdin\n"
                        "hint: give each a value with --var NAME=VALUE or under vars: in the file; "
                        "{{ stdin }} is filled from piped stdin\n")


def test_bad_var_is_usage_error(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "--var", "no-equals", "list_form.yaml"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        2, "", "evocli: error: --var expects NAME=VALUE with NAME made of letters, digits and _, got 'no-equals'\n")


def test_stdin_becomes_the_last_user_turn(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "list_form.yaml"], input="Answer in lowercase.\n")
    assert r.exit_code == 0
    assert api_env.bodies[0]["messages"][-2:] == [user("And of Italy?"), user("Answer in lowercase.")]


def test_system_only_file_plus_stdin(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "summarize.yaml").write_text("system: Summarize in one line.\n")
    assert cli(["chat-file", "summarize.yaml"], input="long text\n").exit_code == 0
    assert api_env.bodies[0]["messages"] == [system("Summarize in one line."), user("long text")]
    r = cli(["chat-file", "summarize.yaml"])
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr == ("evocli: error: summarize.yaml: the conversation has no messages\n"
                        "hint: add a messages: list, or pipe the user's turn on stdin\n")


def test_no_stdin_ignores_piped_text(cli: Cli, api_env: FakeServer, here: Path) -> None:
    assert cli(["chat-file", "--no-stdin", "list_form.yaml"], input="ignored\n").exit_code == 0
    assert api_env.bodies[0]["messages"][-1] == user("And of Italy?")


def test_dash_reads_the_yaml_from_stdin(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "-"], input="- role: user\n  content: from a pipe\n")
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER + "\n", "")
    assert api_env.bodies[0]["messages"] == [user("from a pipe")]
    r = cli(["chat-file", "-"], input="- role: usr\n  content: x\n")
    assert (r.exit_code, r.stderr) == (
        65, "evocli: error: <stdin>:1: messages[0]: role must be one of system, developer, user, assistant, tool\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--append", "-"], "--append needs a FILE to write to, not - (stdin)"),
    (["--no-stdin", "-"], "FILE - reads the conversation from stdin, which --no-stdin forbids"),
])
def test_dash_with_append_or_no_stdin_is_usage_error(cli: Cli, api_env: FakeServer, args: list[str], message: str) -> None:
    r = cli(["chat-file", *args], input="- {role: user, content: x}\n")
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"evocli: error: {message}\n")
    assert api_env.requests == []


def test_file_argument_is_required(cli: Cli) -> None:
    r = cli(["chat-file"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == "evocli: error: missing argument 'FILE'\nhint: 'evocli chat-file -h' lists the options\n"


# ---------------------------------------------------------------------------------------------
# Bad files.


def test_validation_error_names_file_line_and_index(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "bad_role.yaml"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        65, "", "evocli: error: bad_role.yaml:7: messages[2]: role must be one of system, developer, user, assistant, tool\n")
    assert api_env.requests == []


def test_python_tag_is_refused(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "python_tag.yaml"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        65, "", "evocli: error: python_tag.yaml:4: tag !!python/object/apply:os.system is not allowed: "
                "only plain YAML data is loaded\n")
    assert not (here / "pwned-by-yaml").exists()
    assert api_env.requests == []


def test_alias_bomb_is_refused(cli: Cli, api_env: FakeServer, here: Path) -> None:
    r = cli(["chat-file", "alias_bomb.yaml"])
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr == ("evocli: error: alias_bomb.yaml: its aliases would expand it to 30,563,844,577 nodes and "
                        "characters, beyond the limit of 1,001,140: refused\n"
                        "hint: write the repeated text out, or use fewer nested aliases\n")
    assert api_env.requests == []


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ("{temperature: .nan}", "params.temperature: NaN is not a JSON number"),
        ("{top_p: -.inf}", "params.top_p: -Infinity is not a JSON number"),
        ("{stop: [x, .inf]}", "params.stop: Infinity is not a JSON number"),
    ],
)
def test_non_finite_params_are_65(cli: Cli, api_env: FakeServer, here: Path, params: str, problem: str) -> None:
    (here / "nan.yaml").write_text(f"model: m\nparams: {params}\nmessages: [{{role: user, content: x}}]\n")
    for extra in ([], ["--dry-run"]):
        r = cli(["chat-file", *extra, "nan.yaml"])
        assert (r.exit_code, r.stdout, r.stderr) == (65, "", f"evocli: error: nan.yaml:2: {problem}\n")
    assert api_env.requests == []


def test_missing_file_is_66(cli: Cli, api_env: FakeServer, here: Path) -> None:
    for args in (["nope.yaml"], ["--append", "nope.yaml"]):
        r = cli(["chat-file", *args])
        assert (r.exit_code, r.stdout, r.stderr) == (
            66, "", "evocli: error: cannot read nope.yaml: No such file or directory\n")
    (here / "folder").mkdir()
    r = cli(["chat-file", "folder"])
    assert (r.exit_code, r.stderr) == (66, "evocli: error: cannot read folder: it is a folder\n")
    assert api_env.requests == []


@pytest.mark.skipif(ROOT, reason="root can read any file")
def test_unreadable_file_is_66(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "list_form.yaml").chmod(0)
    r = cli(["chat-file", "list_form.yaml"])
    assert (r.exit_code, r.stderr) == (66, "evocli: error: cannot read list_form.yaml: Permission denied\n")


def test_not_utf8_is_65(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "latin1.yaml").write_bytes(b"- {role: user, content: caf\xe9}\n")
    r = cli(["chat-file", "latin1.yaml"])
    assert (r.exit_code, r.stderr) == (65, "evocli: error: latin1.yaml: not valid UTF-8 text (byte 27)\n")


# ---------------------------------------------------------------------------------------------
# Settings and the shared options, through the same call path as ask.


def test_precedence_flags_file_env_config(cli: Cli, api_env: FakeServer, here: Path, isolated: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("model: from-config\nparams: {seed: 1, top_p: 0.5, user: cfg}\n")
    monkeypatch.setenv("EVOCLI_MODEL", "from-env")
    (here / "m.yaml").write_text("model: from-file\nparams: {seed: 2, temperature: 0.7}\nmessages: [{role: user, content: x}]\n")
    (here / "plain.yaml").write_text("- {role: user, content: x}\n")
    cli(["chat-file", "plain.yaml"])
    cli(["chat-file", "m.yaml"])
    cli(["chat-file", "-m", "from-flag", "-p", "seed=3", "-t", "0.1", "m.yaml"])
    assert [{k: v for k, v in b.items() if k != "messages"} for b in api_env.bodies] == [
        {"model": "from-env", "seed": 1, "top_p": 0.5, "user": "cfg"},
        {"model": "from-file", "seed": 2, "top_p": 0.5, "user": "cfg", "temperature": 0.7},
        {"model": "from-flag", "seed": 3, "top_p": 0.5, "user": "cfg", "temperature": 0.1},
    ]


def test_output_modes_and_usage(cli: Cli, api_env: FakeServer, here: Path) -> None:
    raw = json.dumps(completion_body("Roma.")).encode()
    api_env.script(Reply(body=raw))
    r = cli(["chat-file", "-o", "json", "list_form.yaml"])
    assert (r.exit_code, r.stdout) == (0, raw.decode() + "\n")
    r = cli(["chat-file", "-o", "usage", "list_form.yaml"])
    assert json.loads(r.stdout) == completion_body()["usage"]
    r = cli(["chat-file", "-u", "list_form.yaml"])
    assert (r.stdout, r.stderr) == (ANSWER + "\n", "usage: prompt_tokens=12 completion_tokens=7 reasoning_tokens=3 "
                                    "cached_tokens=2 image_tokens=0 total_tokens=19\n")


def test_ledger_records_the_command_and_tag(cli: Cli, api_env: FakeServer, here: Path, isolated: Path) -> None:
    assert cli(["chat-file", "--tag", "nightly", "list_form.yaml"]).exit_code == 0
    assert cli(["chat-file", "--no-ledger", "list_form.yaml"]).exit_code == 0
    [month] = (isolated / "ledger").iterdir()
    [record] = [json.loads(line) for line in month.read_text().splitlines()]
    assert (record["command"], record["tag"], record["ok"]) == ("chat-file", "nightly", True)


def test_api_error_is_reported_like_ask(cli: Cli, api_env: FakeServer, here: Path) -> None:
    api_env.script(Reply(status=404, body={"error": {"message": "Model 'x' is not available"}}))
    r = cli(["chat-file", "--retries", "0", "list_form.yaml"])
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr.startswith("evocli: error: HTTP 404 Not Found: \"Model 'x' is not available\"\n")


def test_dry_run_prints_the_request(cli: Cli, here: Path) -> None:
    r = cli(["chat-file", "--dry-run", "list_form.yaml"], input="one more\n")
    assert (r.exit_code, r.stderr) == (0, "")
    doc = json.loads(r.stdout)
    assert doc["body"]["messages"][-1] == user("one more")
    assert doc["headers"]["Authorization"] == "Bearer <none>"


# ---------------------------------------------------------------------------------------------
# --append.

JOURNAL_END = '    content: "Journal started."\n'


def journal_with(*turns: str) -> str:
    text = (FIXTURES / "journal.yaml").read_text()
    return text.replace(JOURNAL_END, JOURNAL_END + "".join(turns))


def test_append_adds_the_stdin_turn_and_the_answer(cli: Cli, api_env: FakeServer, here: Path) -> None:
    journal = here / "journal.yaml"
    journal.chmod(0o640)
    r = cli(["chat-file", "--append", "journal.yaml"], input="Deployed v2 today.\n")
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER + "\n", "")
    assert journal.read_text() == journal_with(
        "  - role: user\n    content: Deployed v2 today.\n",
        "  - role: assistant\n    content: Hello from the test server.\n",
    )
    assert stat.S_IMODE(journal.stat().st_mode) == 0o640
    assert listing(here) == listing(FIXTURES)


def test_three_appends_send_the_full_history(cli: Cli, api_env: FakeServer, here: Path) -> None:
    asked = ["note: one", "- two # with a dash and a hash", "three\n  'quoted' \"twice\" {braces} {{ team }}\n"]
    answers = ["One.", "Multi-line:\n  - a: b\n  - '#c'\n\ntrailing  ", "Use {{ team }} literally."]
    api_env.script(*[Reply(body=completion_body(a)) for a in answers])
    for text in asked:
        r = cli(["chat-file", "--append", "journal.yaml"], input=text + "\n")
        assert (r.exit_code, r.stderr) == (0, "")
    head = [system("You keep a terse engineering journal for the platform team."),
            user("Start the journal for the platform team."), assistant("Journal started.")]
    sent = [b["messages"] for b in api_env.bodies]
    assert sent == [
        [*head, user(asked[0])],
        [*head, user(asked[0]), assistant(answers[0]), user(asked[1])],
        [*head, user(asked[0]), assistant(answers[0]), user(asked[1]), assistant(answers[1]),
         user(asked[2].rstrip("\n"))],
    ]
    assert (here / "journal.yaml").read_text() == journal_with(
        "  - role: user\n    content: 'note: one'\n",
        "  - role: assistant\n    content: One.\n",
        "  - role: user\n    content: '- two # with a dash and a hash'\n",
        "  - role: assistant\n    content: |-\n      Multi-line:\n        - a: b\n        - '#c'\n\n      trailing  \n",
        "  - role: user\n    literal: true\n    content: |-\n      three\n        'quoted' \"twice\" {braces} {{ team }}\n",
        "  - role: assistant\n    literal: true\n    content: Use {{ team }} literally.\n",
    )
    # A fourth run sends the literal turns back exactly: no placeholder is filled in them.
    assert cli(["chat-file", "--no-stdin", "--dry-run", "journal.yaml"]).exit_code == 0


def test_append_when_stdin_fills_a_placeholder(cli: Cli, api_env: FakeServer, here: Path) -> None:
    before = (here / "review.yaml").read_text()
    assert cli(["chat-file", "--append", "review.yaml"], input="diff\n").exit_code == 0
    assert (here / "review.yaml").read_text() == before + "  - role: assistant\n    content: Hello from the test server.\n"


def test_failed_call_leaves_the_file_untouched(cli: Cli, api_env: FakeServer, here: Path) -> None:
    before = (here / "journal.yaml").read_bytes()
    api_env.script(Reply(status=500, body={"error": {"message": "boom"}}))
    r = cli(["chat-file", "--append", "--retries", "0", "journal.yaml"], input="note\n")
    assert (r.exit_code, r.stdout) == (75, "")
    assert r.stderr.startswith('evocli: error: HTTP 500 Internal Server Error: "boom"\n')
    assert (here / "journal.yaml").read_bytes() == before
    assert listing(here) == listing(FIXTURES)


def test_failed_write_leaves_the_file_untouched(cli: Cli, api_env: FakeServer, here: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = (here / "journal.yaml").read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safefile.os, "fsync", disk_full)
    r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    assert (r.exit_code, r.stdout) == (66, ANSWER + "\n")
    assert r.stderr == ("evocli: error: cannot save the answer to journal.yaml: No space left on device\n"
                        "hint: journal.yaml was left as it was\n")
    assert (here / "journal.yaml").read_bytes() == before
    assert listing(here) == listing(FIXTURES)


def test_interrupted_write_leaves_the_file_untouched(cli: Cli, api_env: FakeServer, here: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before = (here / "journal.yaml").read_bytes()

    def ctrl_c(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(safefile.os, "replace", ctrl_c)
    r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    assert r.exit_code == 130
    assert (here / "journal.yaml").read_bytes() == before
    assert listing(here) == listing(FIXTURES)


def editing_server(path: Path, edit: str, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A server that, while "thinking", appends `edit` to the file, as an editor would."""

    def answer(rec: Recorded) -> Reply:
        with open(path, "a") as fh:
            fh.write(edit)
        return Reply(body=completion_body("Noted."))

    server = FakeServer(default=answer)
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", server.base_url)
    return server


def test_an_edit_saved_during_the_call_is_kept(cli: Cli, here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = here / "journal.yaml"
    with editing_server(journal, "# Reviewed by Ann.\n", monkeypatch):
        r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Noted.\n", "")
    assert journal.read_text() == journal_with(
        "  - role: user\n    content: note\n", "  - role: assistant\n    content: Noted.\n") + "# Reviewed by Ann.\n"


def test_a_broken_edit_during_the_call_is_not_overwritten(cli: Cli, here: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    journal = here / "journal.yaml"
    with editing_server(journal, "messages: [\n", monkeypatch):
        r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    # A save that fails is 66, whatever the reason (here: the file is no longer valid YAML).
    assert (r.exit_code, r.stdout) == (66, "Noted.\n")
    assert r.stderr.startswith("evocli: error: cannot save the answer to journal.yaml: journal.yaml:")
    assert r.stderr.endswith("\nhint: the answer above was not saved to journal.yaml\n")
    assert journal.read_text() == (FIXTURES / "journal.yaml").read_text() + "messages: [\n"
    assert listing(here) == listing(FIXTURES)


def test_dry_run_with_append_writes_nothing(cli: Cli, api_env: FakeServer, here: Path) -> None:
    before = (here / "journal.yaml").read_bytes()
    r = cli(["chat-file", "--append", "--dry-run", "journal.yaml"], input="note\n")
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout)["body"]["messages"][-1] == user("note")
    assert (here / "journal.yaml").read_bytes() == before
    assert api_env.requests == []


def test_append_through_a_symlink_updates_the_target(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "link.yaml").symlink_to("journal.yaml")
    assert cli(["chat-file", "--append", "link.yaml"], input="via link\n").exit_code == 0
    assert (here / "link.yaml").is_symlink()
    assert "via link" in (here / "journal.yaml").read_text()


def test_append_to_a_flow_mapping_file_rewrites_with_a_warning(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "flow.yaml").write_text("{system: Be terse.}  # all on one line\n")
    r = cli(["chat-file", "--append", "flow.yaml"], input="hi\n")
    assert (r.exit_code, r.stdout) == (0, ANSWER + "\n")
    assert r.stderr == ("evocli: warning: flow.yaml: its layout does not allow appending in place; "
                        "rewrote it without its comments and formatting\n")
    assert (here / "flow.yaml").read_text() == (
        "system: Be terse.\nmessages:\n- role: user\n  content: hi\n- role: assistant\n  content: Hello from the test server.\n")


@pytest.mark.skipif(ROOT, reason="root may write anywhere")
def test_unwritable_file_is_66_before_any_call(cli: Cli, api_env: FakeServer, here: Path) -> None:
    (here / "journal.yaml").chmod(0o444)
    r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    assert (r.exit_code, r.stdout, r.stderr) == (
        66, "", "evocli: error: cannot append to journal.yaml: the file is not writable\n")
    assert api_env.requests == []
    (here / "journal.yaml").chmod(0o644)
    here.chmod(0o555)
    try:
        r = cli(["chat-file", "--append", "journal.yaml"], input="note\n")
    finally:
        here.chmod(0o755)
    assert (r.exit_code, r.stderr) == (66, "evocli: error: cannot append to journal.yaml: its folder is not writable\n")
    assert api_env.requests == []


def test_help_lists_the_options(cli: Cli) -> None:
    r = cli(["chat-file", "--help"])
    assert r.exit_code == 0
    assert r.stdout.startswith("Usage: evocli chat-file [OPTIONS] {FILE}")
    for option in ("--var", "--append", "--no-stdin", "--model", "--output", "--dry-run", "--retries"):
        assert option in r.stdout


# ---------------------------------------------------------------------------------------------
# The README's examples are what evocli really does.

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_format_example_is_the_fixture() -> None:
    assert "```yaml\n" + (FIXTURES / "review.yaml").read_text() + "```\n" in README


def test_readme_error_examples(cli: Cli, api_env: FakeServer, here: Path) -> None:
    shutil.copy(here / "bad_role.yaml", here / "review.yaml")
    r = cli(["chat-file", "review.yaml"])
    assert f"```text\n  {r.stderr}  ```\n" in README
    text = (FIXTURES / "review.yaml").read_text()
    (here / "review.yaml").write_text(text[: text.index("vars:")] + text[text.index("messages:"):])
    r = cli(["chat-file", "review.yaml"], input="diff\n")
    assert f"```text\n{r.stderr}```\n" in README


def test_readme_append_example(cli: Cli, api_env: FakeServer, here: Path) -> None:
    api_env.script(Reply(body=completion_body("Noted: v2 is live.")))
    before = (here / "journal.yaml").read_text()
    assert cli(["chat-file", "--append", "journal.yaml"], input="Deployed v2 today.\n").exit_code == 0
    after = (here / "journal.yaml").read_text()
    start = "messages:\n  # The first turn"
    for text in (before, after):
        block = text[text.index(start): text.index("\n# Notes")]
        assert f"```yaml\n{block}```\n" in README


def test_help_loads_neither_requests_nor_yaml() -> None:
    code = (
        "import sys\n"
        "from evocli.cli import app\n"
        "try:\n"
        "    app(['chat-file', '--help'], prog_name='evocli')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(','.join(m for m in ('requests', 'yaml') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env(),
                         check=True)
    assert out.stderr == ""
    assert out.stdout.startswith("Usage: evocli chat-file")
