"""Reading the ledger (pure parts): periods, month files, block reading, the summary and its fast path."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evocli import ledger_read as ledger
from evocli import ledger_rows, ledger_sum
from evocli.errors import NoInputError, UsageError
from evocli.ledger import CallRecord, encode_line
from evocli.ledger_read import Period, make_period, parse_when
from evocli.ledger_sum import Report, summarize
from tests.conftest import REPO, child_env

NOW = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)


def line(
    when: str,
    *,
    model: str = "gpt-5.2",
    command: str = "ask",
    tag: str | None = None,
    ok: bool = True,
    tokens: tuple[int, int, int, int] = (10, 5, 1, 2),
    latency: int = 100,
    image: int = 0,
) -> bytes:
    """A ledger line exactly as `append` writes it."""
    prompt, completion, reasoning, cached = tokens
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "image_tokens": image},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }
    record = CallRecord(command=command, model=model, ok=ok, exit_code=0 if ok else 75, latency_ms=latency,
                        attempts=1, stream=False, tag=tag, http_status=200 if ok else 429,
                        usage=usage if ok else None)
    return encode_line(record, datetime.fromisoformat(when))


def table(report: Report) -> list[tuple[Any, ...]]:
    return [(*key, *tally.values().values()) for key, tally in report.rows]


# --- periods -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "until", "expected"),
    [
        ("2026-11-01", False, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", True, datetime(2026, 11, 2, tzinfo=UTC)),  # the whole day is included
        ("20261130", True, datetime(2026, 12, 1, tzinfo=UTC)),
        ("2026-11-01 09:30", True, datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30", True, datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:15Z", False, datetime(2026, 11, 1, 9, 30, 15, tzinfo=UTC)),
        ("2026-11-01T10:30+01:00", False, datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("7d", False, NOW - timedelta(days=7)),
        ("7d", True, NOW - timedelta(days=7)),
        ("24h", False, NOW - timedelta(hours=24)),
        ("0h", False, NOW),
        (" 30d ", False, NOW - timedelta(days=30)),
    ],
)
def test_parse_when(text: str, until: bool, expected: datetime) -> None:
    assert parse_when("--since", text, NOW, until=until) == expected


@pytest.mark.parametrize("text", ["", "7", "7x", "d7", "-7d", "1.5d", "yesterday", "2026-13-01", "2026-11-31", "11/01/2026"])
def test_parse_when_refuses(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_when("--until", text, NOW)
    assert err.value.message == f"--until: cannot read {text!r} as a time"
    assert err.value.hint == "use a date (2026-11-01), a UTC time (2026-11-01T09:30), days (7d) or hours (24h)"


@pytest.mark.parametrize(
    ("option", "text"),
    [
        ("--since", "0001-01-01T00:00+05:00"),  # before 0001-01-01 in UTC
        ("--since", "9999-12-31T23:00-05:00"),  # after 9999-12-31 in UTC
        ("--until", "0001-01-01T04:59:59.999999+05:00"),
        ("--since", "999999d"),  # before the year 1
    ],
)
def test_parse_when_refuses_times_out_of_range(option: str, text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_when(option, text, NOW, until=option == "--until")
    assert err.value.message == f"{option}: {text!r} is out of range"
    assert err.value.hint == "times go from 0001-01-01 to 9999-12-31 (UTC)"


def test_periods_at_the_edges_of_time() -> None:
    end = datetime.max.replace(tzinfo=UTC)
    start = datetime.min.replace(tzinfo=UTC)
    # The last day there is: --until includes it whole, up to the last moment a time can hold.
    last_day = make_period("9999-12-31", "9999-12-31", NOW)
    assert last_day == Period(datetime(9999, 12, 31, tzinfo=UTC), end)
    assert last_day.months() == ("9999-12", "9999-12")
    assert (last_day.since_ts, last_day.until_ts) == ("9999-12-31T00:00:00.000Z", None)
    assert make_period(None, "9999-12-31T23:59:59.999999", NOW).months() == (None, "9999-12")
    # An end within the first millisecond there is.
    first = make_period(None, "0001-01-01T00:00:00.000001", NOW)
    assert first == Period(None, start.replace(microsecond=1))
    assert (first.months(), first.until_ts) == ((None, "0001-01"), "0001-01-01T00:00:00.000Z")
    assert make_period("0001-01-01", "0001-01-01T00:00", NOW).months() == ("0001-01", "0001-01")
    assert make_period("0001-01-01T05:00+05:00", None, NOW).since == start
    assert make_period("9999-12-31T18:59:59.999999-05:00", None, NOW).since == end
    # Any offset is read as UTC from then on.
    assert parse_when("--since", "2026-11-01T10:30+01:00", NOW).tzinfo is UTC


def test_period_that_ends_before_it_starts() -> None:
    with pytest.raises(UsageError, match="--since 2026-11-05 is after --until 2026-11-03"):
        make_period("2026-11-05", "2026-11-03", NOW)
    assert make_period("2026-11-05", "2026-11-05", NOW) == Period(
        datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC))


def test_period_months() -> None:
    assert Period().months() == (None, None)
    assert make_period("2026-09-15", "2026-11-30", NOW).months() == ("2026-09", "2026-11")
    # An end at midnight on the 1st does not touch that month.
    assert make_period("2026-10-01", "2026-11-01T00:00", NOW).months() == ("2026-10", "2026-10")
    assert make_period("2026-10-01", "2026-11-01T00:00:00.001", NOW).months() == ("2026-10", "2026-11")


def test_month_files_are_only_those_the_period_touches(tmp_path: Path) -> None:
    for name in ["2026-08.jsonl", "2026-09.jsonl", "2026-10.jsonl", "2026-11.jsonl", "notes.txt", "2026-1.jsonl"]:
        (tmp_path / name).write_text("")
    names = lambda period: [p.name for p in ledger.month_files(tmp_path, period)]  # noqa: E731
    assert names(Period()) == ["2026-08.jsonl", "2026-09.jsonl", "2026-10.jsonl", "2026-11.jsonl"]
    assert names(make_period("2026-09-30", "2026-10-31", NOW)) == ["2026-09.jsonl", "2026-10.jsonl"]
    assert names(make_period("2026-10-01", None, NOW)) == ["2026-10.jsonl", "2026-11.jsonl"]
    # Years before 1000 are four digits too, like the files' names.
    assert names(make_period(None, "0999-12-31", NOW)) == []
    assert names(make_period("0999-12-31", "2026-08-31", NOW)) == ["2026-08.jsonl"]
    assert names(make_period(None, "2026-08-31", NOW)) == ["2026-08.jsonl"]
    assert ledger.month_files(tmp_path / "missing", Period()) == []


def test_ledger_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(NoInputError, match=r"cannot read the usage ledger in .*/f: Not a directory"):
        ledger.month_files(tmp_path / "f", Period())


# --- block reading --------------------------------------------------------------------------------


def test_blocks_hold_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "2026-11.jsonl"
    lines = [f"line {i} ".encode() * (i % 7 + 1) + b"\n" for i in range(100)]
    path.write_bytes(b"".join(lines))
    blocks = list(ledger.read_blocks(path, size=50))
    assert all(b.endswith(b"\n") for b in blocks)
    assert b"".join(blocks) == path.read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.binary(min_size=0, max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=5),
    size=st.integers(min_value=1, max_value=64),
    last_newline=st.booleans(),
)
def test_byte_ranges_cover_every_line_once(
    tmp_path: Path, lines: list[bytes], cuts: list[int], size: int, last_newline: bool
) -> None:
    data = b"".join(lines)
    if not last_newline and data:
        data = data[:-1]
    path = tmp_path / "2026-11.jsonl"
    path.write_bytes(data)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [
        b"".join(ledger.read_blocks(path, size=size, start=a, end=b))
        for a, b in itertools.pairwise(bounds)
    ]
    assert b"".join(pieces) == data
    done = b""
    for piece in pieces:  # every range ends on a line end (or at the end of the file)
        done += piece
        assert done in (b"", data) or done.endswith(b"\n")


def test_overlong_line_is_skipped_as_one_corrupt_line(tmp_path: Path) -> None:
    path = tmp_path / "2026-11.jsonl"
    good = line("2026-11-01T10:00:00+00:00")
    path.write_bytes(good + b"x" * 3000 + b"\n" + good + b"y" * 2000)
    blocks = list(ledger.read_blocks(path, size=64, max_line=1000))
    assert b"".join(blocks) == good + ledger.OVERLONG + good + ledger.OVERLONG
    report = summarize(blocks)
    assert (report.totals.requests, report.corrupt) == (2, 2)


def test_unreadable_month_file(tmp_path: Path) -> None:
    (tmp_path / "2026-11.jsonl").mkdir()
    with pytest.raises(NoInputError, match=r"cannot read the usage ledger file .*2026-11.jsonl: Is a directory"):
        ledger_sum.report(tmp_path)


# --- the summary ----------------------------------------------------------------------------------

SAMPLE = [
    line("2026-10-31T23:59:59.999+00:00", tag="nightly", tokens=(10, 5, 1, 2), latency=100),
    line("2026-11-01T00:00:00+00:00", tag="nightly", tokens=(20, 10, 2, 4), latency=200),
    line("2026-11-01T12:00:00+00:00", model="gpt-5.2-mini", command="chat-file", tokens=(5, 5, 0, 0), latency=50),
    line("2026-11-02T08:00:00+00:00", tag="ci", ok=False, latency=1000),
    line("2026-11-30T23:00:00+00:00", model="claude-sonnet-4.5", command="batch", tag="ci",
         tokens=(100, 50, 10, 20), latency=300),
    line("2026-12-01T00:00:00+00:00", tokens=(1, 1, 0, 0), latency=10),
]


def test_summary_by_model() -> None:
    report = summarize([b"".join(SAMPLE)])
    # requests, errors, prompt, completion, reasoning, cached, total, mean latency
    assert table(report) == [
        ("claude-sonnet-4.5", 1, 0, 100, 50, 10, 20, 0, 150, 300),
        ("gpt-5.2", 4, 1, 31, 16, 3, 6, 0, 47, 328),  # (100 + 200 + 1000 + 10) / 4 = 327.5
        ("gpt-5.2-mini", 1, 0, 5, 5, 0, 0, 0, 10, 50),
    ]
    assert report.totals.values() == {
        "requests": 6, "errors": 1, "prompt_tokens": 136, "completion_tokens": 71, "reasoning_tokens": 13,
        "cached_tokens": 26, "image_tokens": 0, "total_tokens": 207, "mean_latency_ms": 277,
    }
    assert report.corrupt == 0


def test_summary_by_day_tag_and_command() -> None:
    assert table(summarize(SAMPLE, "day")) == [
        ("2026-10-31", 1, 0, 10, 5, 1, 2, 0, 15, 100),
        ("2026-11-01", 2, 0, 25, 15, 2, 4, 0, 40, 125),
        ("2026-11-02", 1, 1, 0, 0, 0, 0, 0, 0, 1000),
        ("2026-11-30", 1, 0, 100, 50, 10, 20, 0, 150, 300),
        ("2026-12-01", 1, 0, 1, 1, 0, 0, 0, 2, 10),
    ]
    assert table(summarize(SAMPLE, "tag")) == [
        ("ci", 2, 1, 100, 50, 10, 20, 0, 150, 650),
        ("nightly", 2, 0, 30, 15, 3, 6, 0, 45, 150),
        (None, 2, 0, 6, 6, 0, 0, 0, 12, 30),  # untagged calls come last
    ]
    assert table(summarize(SAMPLE, "command")) == [
        ("ask", 4, 1, 31, 16, 3, 6, 0, 47, 328),
        ("batch", 1, 0, 100, 50, 10, 20, 0, 150, 300),
        ("chat-file", 1, 0, 5, 5, 0, 0, 0, 10, 50),
    ]


def test_summary_filters_by_period_and_tag() -> None:
    november = make_period("2026-11-01", "2026-11-30", NOW)
    assert [key for (key,), _ in summarize(SAMPLE, "day", november).rows] == ["2026-11-01", "2026-11-02", "2026-11-30"]
    assert summarize(SAMPLE, "day", make_period("2026-11-01T12:00", "2026-11-02T08:00", NOW)).rows[0][0] == ("2026-11-01",)
    assert summarize(SAMPLE, "day", make_period("2026-11-01T12:00", "2026-11-02T08:00", NOW)).totals.requests == 1
    assert table(summarize(SAMPLE, "tag", Period(), ["ci"])) == [("ci", 2, 1, 100, 50, 10, 20, 0, 150, 650)]
    assert summarize(SAMPLE, "tag", november, ["ci", "nightly"]).totals.requests == 3
    assert summarize(SAMPLE, "model", make_period("2027-01-01", None, NOW)).rows == []


def test_summary_does_not_depend_on_how_lines_are_cut_into_blocks() -> None:
    whole = table(summarize([b"".join(SAMPLE)], "tag"))
    assert table(summarize(SAMPLE, "tag")) == whole
    assert table(summarize([b"".join(SAMPLE[:2]), b"".join(SAMPLE[2:])], "tag")) == whole
    assert table(summarize([s.rstrip(b"\n") for s in SAMPLE], "tag")) == whole


def test_corrupt_lines_are_skipped_and_counted() -> None:
    corrupt = [
        b"not json\n",
        SAMPLE[0][:40] + b"\n",  # a torn line
        b"[1, 2]\n",
        b'{"model": "x"}\n',  # no ts
        b'{"ts": "yesterday", "ok": true}\n',
        b'{"ts": "2026-11-01T00:00:00Z", "ok": "yes"}\n',
        b'{"ts": "2026-11-01T00:00:00Z", "ok": true, "prompt_tokens": -1}\n',
        b'{"ts": "2026-11-01T00:00:00Z", "ok": true, "prompt_tokens": 1.5}\n',
        b'{"ts": "2026-11-01T00:00:00Z", "ok": true, "total_tokens": true}\n',
        b'{"ts": "2026-11-01T00:00:00Z", "ok": true, "model": 5}\n',
        b"\xff\xfe\n",
    ]
    report = summarize([b"".join(SAMPLE[:3]) + b"".join(corrupt) + b"\n  \n" + b"".join(SAMPLE[3:])])
    assert report.corrupt == len(corrupt)  # blank lines are not counted
    assert table(report) == table(summarize(SAMPLE))


def test_records_in_other_shapes_are_read_too() -> None:
    # Another writer's order, a UTC offset, missing fields, non-ASCII text, escapes, CRLF.
    others = [
        b'{"ok": true, "ts": "2026-11-01T02:00:00+01:00", "model": "caf\\u00e9", "total_tokens": 7}\n',
        '{"ts":"2026-11-01T03:00:00Z","ok":false,"model":"café","tag":"réunion","latency_ms":40}\r\n'.encode(),
        b'{"ts":"2026-11-01T04:00:00.5Z","ok":true,"model":"a\\"b","prompt_tokens":null}\n',
    ]
    assert table(summarize(others)) == [
        ('a"b', 1, 0, 0, 0, 0, 0, 0, 0, 0),
        ("café", 2, 1, 0, 0, 0, 0, 0, 7, 20),
    ]
    assert table(summarize(others, "day", make_period("2026-11-01T01:00", "2026-11-01T01:00:00.001", NOW))) == [
        ("2026-11-01", 1, 0, 0, 0, 0, 0, 0, 7, 0),
    ]
    assert table(summarize(others, "tag", Period(), ["réunion"])) == [("réunion", 1, 1, 0, 0, 0, 0, 0, 0, 40)]


def test_unknown_grouping() -> None:
    with pytest.raises(ValueError, match="unknown grouping 'user'"):
        summarize([], "user")


def test_empty_ledger_is_an_empty_report(tmp_path: Path) -> None:
    report = ledger_sum.report(tmp_path / "missing")
    assert (report.rows, report.corrupt) == ([], 0)
    assert report.totals.values()["mean_latency_ms"] is None


def test_parallel_report_equals_the_sequential_one(tmp_path: Path) -> None:
    months = {"2026-10": SAMPLE[:1], "2026-11": SAMPLE[1:5] * 50 + [b"garbage\n"] * 3, "2026-12": SAMPLE[5:]}
    for month, lines in months.items():
        (tmp_path / f"{month}.jsonl").write_bytes(b"".join(lines))
    for by in ledger.GROUPINGS:
        one = ledger_sum.report(tmp_path, by, workers=1)
        many = ledger_sum.report(tmp_path, by, workers=3, parallel_min_bytes=1)
        assert (table(many), many.totals, many.corrupt) == (table(one), one.totals, one.corrupt)
    period = make_period("2026-11-01T06:00", "2026-11-30", NOW)
    one = ledger_sum.report(tmp_path, "day", period, ["ci"], workers=1)
    many = ledger_sum.report(tmp_path, "day", period, ["ci"], workers=2, parallel_min_bytes=1)
    assert table(many) == table(one) == [("2026-11-02", 50, 50, 0, 0, 0, 0, 0, 0, 1000),
                                         ("2026-11-30", 50, 0, 100 * 50, 50 * 50, 500, 1000, 0, 7500, 300)]
    assert many.corrupt == 3


def test_parallel_workers_end_quietly_under_evocli_signal_handlers(tmp_path: Path) -> None:
    """The pool ends its workers with SIGTERM: under evocli's handlers (SIGTERM raises
    KeyboardInterrupt), a worker must not print a traceback for it. It raced: about one report in two."""
    (tmp_path / "2026-11.jsonl").write_bytes(b"".join(SAMPLE[1:5]) * 50)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from evocli import ledger_sum, signals\n"
        "signals.install()\n"
        "for _ in range(20):\n"
        f"    ledger_sum.report(Path({str(tmp_path)!r}), workers=2, parallel_min_bytes=1)\n"
        "print('done')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env(),
                         timeout=120)
    assert (out.returncode, out.stdout, out.stderr) == (0, "done\n", "")


# --- the fast path agrees with the lenient reader ------------------------------------------------

texts = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["gpt-5.2", "ci", "ask", "", "a,b", 'q"', "\\"]))
counts = st.integers(min_value=0, max_value=10**12)


@st.composite
def ledger_lines(draw: st.DrawFn) -> bytes:
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(milliseconds=draw(st.integers(0, 10**12)))
    record = CallRecord(
        command=draw(texts) or "ask", model=draw(texts) or "m", ok=draw(st.booleans()),
        exit_code=draw(st.sampled_from([0, 65, 75, 130])), latency_ms=draw(counts),
        attempts=draw(st.integers(1, 5)), stream=draw(st.booleans()), tag=draw(texts), id=draw(texts),
        http_status=draw(st.sampled_from([None, 200, 429])), finish_reason=draw(texts),
        usage={"prompt_tokens": draw(counts), "completion_tokens": draw(counts), "total_tokens": draw(counts),
               "prompt_tokens_details": {"cached_tokens": draw(counts), "image_tokens": draw(counts)},
               "completion_tokens_details": {"reasoning_tokens": draw(counts)}},
    )
    data = encode_line(record, when).rstrip(b"\n")
    if draw(st.booleans()):
        # A line written before image_tokens existed.
        data = re.sub(rb',"image_tokens":[0-9]+\}$', b"}", data)
    # Sometimes damage it: the fast path must then either refuse it or agree with json.
    if draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + draw(st.binary(max_size=3)) + data[i + draw(st.integers(0, 3)):]
    return data


def normal(row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    """A row's values: the fast path keeps the counts' names and leaves a missing image_tokens empty."""
    if row is None:
        return None
    values = dict(zip(ledger_rows.FIELDS, row, strict=True))
    values["counts"] = ledger_rows.numbers([values["counts"]])
    values["image_tokens"] = int(values["image_tokens"] or 0)
    return values


@settings(max_examples=400, deadline=None)
@given(ledger_lines())
def test_fast_path_reads_lines_as_json_does(data: bytes) -> None:
    fast = ledger_rows.fast_pattern().fullmatch(data)
    if fast is not None:
        assert normal(fast.groups()) == normal(ledger_rows.parse_line(data))
        assert json.loads(data)  # it is JSON


@settings(max_examples=100, deadline=None)
@given(st.lists(ledger_lines(), max_size=12), st.sampled_from(ledger.GROUPINGS))
def test_summary_is_the_same_line_by_line(lines: list[bytes], by: str) -> None:
    lines = [ln for ln in lines if b"\n" not in ln and b"\r" not in ln]
    whole = summarize([b"\n".join(lines) + b"\n"], by)
    one_by_one = summarize(lines, by)
    assert (table(whole), whole.corrupt) == (table(one_by_one), one_by_one.corrupt)


@pytest.mark.parametrize(
    ("old", "new", "lenient"),
    [
        (b'"prompt_tokens":10,', b'"prompt_tokens":010,', "corrupt"),  # JSON has no leading zeros
        (b'"prompt_tokens":10,', b'"prompt_tokens":-10,', "corrupt"),
        (b'"prompt_tokens":10,', b'"prompt_tokens":1e1,', "corrupt"),
        (b'"exit_code":0,', b'"exit_code":00,', "corrupt"),
        (b'"model":"gpt-5.2"', b'"model":"gpt-\\u0035.2"', "read"),  # an escape: read by json
        (b',"image_tokens":3}', b',"image_tokens":03}', "corrupt"),
        (b',"image_tokens":3}', b'}', "read"),  # a line from before image_tokens
        (b',"image_tokens":3}', b',"image_tokens":3} ', "read"),  # trailing blank
    ],
)
def test_lines_the_fast_path_leaves_to_json(old: bytes, new: bytes, lenient: str) -> None:
    good = line("2026-11-01T10:00:00+00:00", image=3)
    assert old in good
    changed = good.replace(old, new).rstrip(b"\n")
    assert ledger_rows.fast_pattern().fullmatch(good.rstrip(b"\n")) is not None
    fast = ledger_rows.fast_pattern().fullmatch(changed)
    assert (fast is None) == (new not in (b"}",))
    assert (ledger_rows.parse_line(changed) is None) == (lenient == "corrupt")
    assert summarize([changed + b"\n"]).corrupt == (1 if lenient == "corrupt" else 0)
