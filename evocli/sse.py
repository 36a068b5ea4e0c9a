"""An incremental Server-Sent Events parser over raw bytes, following the WHATWG rules (pure)."""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed so far.

    Lines end in CR, LF or CRLF (a CR at the end of one read and an LF at the start of the next
    are one line end). Each line is decoded as UTF-8 only once it is complete, so a character
    split across reads is never broken. Lines starting with `:` are comments (keep-alives).
    Several `data:` lines of one event are joined by LF. An event is dispatched on a blank line;
    a last event without its blank line is dropped at the end of the stream, as the spec says.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip_lf = False  # the previous read ended in CR: a leading LF belongs to it
        self._first_line = True
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        events: list[Event] = []
        if not chunk:
            return events
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buffer
        # What is already buffered holds no line end (complete lines never stay): only the new
        # bytes are searched, and each found position is reused, so a long line costs linear time.
        fresh = len(buf)
        buf += chunk
        size = len(buf)
        start = 0
        cr, lf = buf.find(b"\r", fresh), buf.find(b"\n", fresh)
        while cr >= 0 or lf >= 0:
            end = lf if cr < 0 or (0 <= lf < cr) else cr
            line = bytes(buf[start:end])
            if end == cr:
                if end + 1 < size:
                    start = end + 2 if buf[end + 1] == 0x0A else end + 1
                else:
                    self._skip_lf = True
                    start = end + 1
            else:
                start = end + 1
            if 0 <= cr < start:
                cr = buf.find(b"\r", start)
            if 0 <= lf < start:
                lf = buf.find(b"\n", start)
            event = self._line(line)
            if event is not None:
                events.append(event)
        del buf[:start]
        return events

    def close(self) -> list[Event]:
        """The end of the stream: a pending partial line is processed, but never dispatched."""
        if self._buffer:
            self._line(bytes(self._buffer))
            self._buffer.clear()
        self._data = []
        self._event = ""
        return []

    def _line(self, raw: bytes) -> Event | None:
        line = raw.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            if line.startswith("\ufeff"):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # `retry` and unknown fields are ignored: evocli has its own retry policy.
        return None

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event = ""
            return None
        event = Event("\n".join(self._data), self._event or "message", self._last_id)
        self._data = []
        self._event = ""
        return event
