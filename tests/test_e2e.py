"""End to end: the real `evocli` process, run by a shell as the README shows, against the local server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KEY, REPO, child_env, run_evocli
from tests.server import FakeServer, Reply, completion_body, free_port
from tests.test_cli_schema import NO_SUMMARY, STRICT, answer, json_schema, user


@pytest.fixture
def sh(tmp_path: Path, api_env: FakeServer):  # type: ignore[no-untyped-def]
    """Run a bash snippet with `evocli` on PATH (a shim over this interpreter) in tmp_path."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "evocli"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m evocli "$@"\n')
    shim.chmod(0o755)

    def run(script: str) -> subprocess.CompletedProcess[str]:
        env = child_env({"PATH": f"{bindir}:/usr/bin:/bin", "PYTHONPATH": str(REPO)})
        return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=60, stdin=subprocess.DEVNULL)

    return run


def test_cat_notes_pipe(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "notes.txt").write_text("meeting at 3\nbring slides\n")
    r = sh('cat notes.txt | evocli ask "Summarize"')
    assert (r.returncode, r.stdout, r.stderr) == (0, "Hello from the test server.\n", "")
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [
        {"role": "user", "content": "meeting at 3\nbring slides\n\nSummarize"}]}]


def test_prompt_from_file_with_dash(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "question.txt").write_text("What is 2+2?\n")
    assert sh("evocli ask - < question.txt").returncode == 0
    assert api_env.bodies[0]["messages"] == [{"role": "user", "content": "What is 2+2?"}]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_json_output_for_jq(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    r = sh("evocli ask -o json 'Say hi' | jq -r '.usage.total_tokens'")
    assert (r.returncode, r.stdout) == (0, "19\n")


def test_json_output_parses(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    r = sh("evocli ask -o json 'Say hi'")
    assert json.loads(r.stdout) == completion_body()
    r = sh('evocli ask -o usage "Say hi"')
    assert json.loads(r.stdout)["total_tokens"] == 19


def test_while_read_loop_with_no_stdin(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "words.txt").write_text("apple\nbanana\ncherry\n")
    r = sh('while read -r word; do evocli ask --no-stdin "Define: $word"; done < words.txt')
    assert r.returncode == 0
    assert r.stdout == "Hello from the test server.\n" * 3
    assert [b["messages"][0]["content"] for b in api_env.bodies] == [
        "Define: apple", "Define: banana", "Define: cherry"]


def test_without_no_stdin_the_loop_would_eat_its_input(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "words.txt").write_text("apple\nbanana\ncherry\n")
    r = sh('while read -r word; do evocli ask "Define: $word"; done < words.txt')
    assert r.returncode == 0
    assert [b["messages"][0]["content"] for b in api_env.bodies] == ["banana\ncherry\n\nDefine: apple"]


def test_double_dash_for_leading_minus(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    assert sh('evocli ask -- "-5 + 3 = ?"').returncode == 0
    assert api_env.bodies[0]["messages"][0]["content"] == "-5 + 3 = ?"


def test_exit_code_case_example(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    api_env.script(*[Reply(status=503, body={"error": {"message": "busy"}})] * 5)
    script = """q=hello
evocli ask --no-stdin --retries 0 "$q" > answer.txt
case $? in
  0) ;;
  75) echo "temporary failure, will retry in the next run" ;;
  *) exit 1 ;;
esac"""
    r = sh(script)
    assert (r.returncode, r.stdout) == (0, "temporary failure, will retry in the next run\n")
    assert r.stderr.startswith('evocli: error: HTTP 503 Service Unavailable: "busy"\n')


def test_dry_run_example(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    r = sh('evocli ask --dry-run -s "Be terse." -p seed=7 "hi"')
    doc = json.loads(r.stdout)
    assert doc["body"] == {"model": "gpt-5.2", "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}], "seed": 7}
    assert doc["headers"]["Authorization"] == "Bearer sk-…WXYZ"
    assert api_env.requests == []


def test_version_and_help() -> None:
    from evocli import __version__

    r = run_evocli(["--version"])
    assert (r.returncode, r.stdout, r.stderr) == (0, f"evocli {__version__}\n", "")
    for args in (["-h"], ["--help"], ["ask", "-h"]):
        r = run_evocli(args)
        assert r.returncode == 0 and r.stdout.startswith("Usage: evocli")
    r = run_evocli([])
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("Usage: evocli")


def test_process_exit_codes(api_env: FakeServer) -> None:
    env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": api_env.base_url}
    api_env.script(Reply(status=402, body={"error": {"message": "Insufficient quota"}}),
                   Reply(status=401, body={"error": {"message": "nope"}}),
                   Reply(body=b"garbage"))
    assert run_evocli(["ask", "x"], env=env, stdin=subprocess.DEVNULL).returncode == 69
    assert run_evocli(["ask", "x"], env=env, stdin=subprocess.DEVNULL).returncode == 77
    assert run_evocli(["ask", "x"], env=env, stdin=subprocess.DEVNULL).returncode == 76
    r = run_evocli(["ask"], env=env, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout) == (65, "")
    r = run_evocli(["ask", "x"], env={"EVOLINK_BASE_URL": api_env.base_url, "EVOLINK_API_KEY": ""},
                   stdin=subprocess.DEVNULL)
    assert r.returncode == 78
    refused = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    r = run_evocli(["ask", "--retries", "0", "x"], env=refused, stdin=subprocess.DEVNULL)
    assert r.returncode == 75
    assert "Traceback" not in r.stderr


def test_closed_stdin_counts_as_no_stdin(api_env: FakeServer) -> None:
    env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": api_env.base_url}
    proc = subprocess.run(
        [sys.executable, "-c", "import os, runpy, sys; os.close(0); sys.argv=['evocli','ask','hi']; runpy.run_module('evocli', run_name='__main__')"],
        capture_output=True, text=True, env=child_env(env), cwd=REPO, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "Hello from the test server.\n", "")


def test_debug_shows_traceback_for_bugs_without_the_key(api_env: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # Plant a bug in the renderer: the one handler must turn it into exit 1 without leaking the key.
    env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": api_env.base_url}
    api_env.script(Reply(body=completion_body()))
    code = (
        "import sys, evocli.output as o\n"
        f"def boom(*a, **k): raise RuntimeError('bug with {KEY}')\n"
        "o.Renderer.end = boom\n"
        "import evocli.cli as c\n"
        "sys.argv = ['evocli', 'ask', '--debug', 'x']\n"
        "c.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env(env), cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert KEY not in proc.stderr
    assert proc.stderr.rstrip().endswith("evocli: error: internal error: RuntimeError: bug with sk-…WXYZ")
    proc = subprocess.run([sys.executable, "-c", code.replace("'--debug', ", "")], capture_output=True, text=True,
                          env=child_env(env), cwd=REPO, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert proc.stderr == ("evocli: error: internal error: RuntimeError: bug with sk-…WXYZ\n"
                           "hint: run again with --debug for details\n")


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jsonl_through_jq(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    r = sh("""evocli ask -o jsonl "Write a haiku" | jq -rj 'select(.type=="delta") | .content'""")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Hello from the test server.", "")


def test_nightly_retry_example(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    api_env.script(Reply(status=429, headers={"Retry-After": "0.1"}))
    r = sh('prompt="Report"; evocli ask --retries 6 --retry-max-time 600 --no-stdin "$prompt" > report.md; cat report.md')
    assert (r.returncode, r.stdout) == (0, "Hello from the test server.\n")
    assert r.stderr == "evocli: HTTP 429, retrying in 0.1 s (attempt 2 of 7)\n"


def test_readme_dry_run_block_is_the_real_output(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    from evocli import __version__

    readme = (REPO / "README.md").read_text()
    start = readme.index("```json\n", readme.index('evocli ask --dry-run -s "Be terse." -p seed=7 "hi"')) + len("```json\n")
    shown = readme[start : readme.index("```", start)]
    r = sh('EVOLINK_BASE_URL= evocli ask --dry-run -s "Be terse." -p seed=7 "hi"')
    assert r.stdout == shown.replace('"evocli/0.1.0"', f'"evocli/{__version__}"')


# ---------------------------------------------------------------------------------------------
# The answer contract (SPEC §8) in pipelines

needs_jq = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")


@needs_jq
def test_a_ticket_classified_into_jq(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ticket.txt").write_text("The printer is on fire.\n")
    api_env.script(answer('{"severity": "high", "summary": "A printer fire."}'))
    r = sh("evocli ask --schema 'severity, summary' < ticket.txt | jq -r .severity")
    assert (r.returncode, r.stdout, r.stderr) == (0, "high\n", "")
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [user("The printer is on fire.")],
                               "response_format": json_schema(STRICT)}]


@needs_jq
def test_a_batch_classified_with_a_schema_file(sh, api_env: FakeServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ticket.schema.json").write_text(json.dumps(STRICT))
    (tmp_path / "tickets.jsonl").write_text('{"id": "T-1", "prompt": "printer on fire"}\n"cannot log in"\n')
    api_env.script(answer('{"severity": "high", "summary": "fire"}'), answer(NO_SUMMARY),
                   answer('{"severity": "low", "summary": "login"}'))
    r = sh("evocli batch -q -c 1 tickets.jsonl --schema ticket.schema.json | jq -c '[.id, .data.severity]'")
    assert (r.returncode, r.stdout, r.stderr) == (0, '["T-1","high"]\n[2,"low"]\n', "")
    assert [b["response_format"] for b in api_env.bodies] == [json_schema(STRICT, "ticket_schema")] * 3


def test_exit_codes_in_a_shell(sh, api_env: FakeServer) -> None:  # type: ignore[no-untyped-def]
    api_env.script(answer(NO_SUMMARY), answer("{}"), answer("half", finish_reason="length"),
                   answer("```sh\necho extracted\n```"))
    r = sh("evocli ask -q --schema 'severity, summary' x > doc.json; echo \"schema=$? $(wc -c < doc.json)\"; "
           "evocli ask -q x; echo \"cut=$?\"; "
           "evocli ask -x 'a script' | sh; "
           "evocli ask --effort minimal x; echo \"effort=$?\"")
    assert r.stdout == "schema=4 0\nhalf\ncut=3\nextracted\neffort=2\n"
    assert r.stderr == (
        "evocli: error: the answer does not match the schema: $: \"severity\" is a required property\n"
        "hint: 1 more problem; 2 attempts made: raise --schema-retries, or look at the answer with -o json\n"
        "evocli: error: the answer was cut off at the token limit (finish_reason length)\n"
        "hint: raise --max-tokens, or lower --effort so fewer tokens go to reasoning\n"
        "evocli: error: invalid value for '--effort': 'minimal' is not one of 'none', 'low', 'medium', 'high', "
        "'xhigh'\nhint: 'evocli ask -h' lists the options\n")
    assert len(api_env.requests) == 4
