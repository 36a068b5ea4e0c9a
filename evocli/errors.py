"""The exit-code table and the one exception family that carries a code to the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses (sysexits-style), documented in the README."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    INCOMPLETE = 3
    REJECTED = 4
    DATAERR = 65
    NOINPUT = 66
    CANTCREAT = 73
    UNAVAILABLE = 69
    TEMPFAIL = 75
    PROTOCOL = 76
    NOPERM = 77
    CONFIG = 78
    INTERRUPTED = 130


class EvocliError(Exception):
    """An expected failure: one line for the user, an optional hint, and an exit code."""

    code: ExitCode = ExitCode.INTERNAL

    def __init__(
        self, message: str, hint: str | None = None, *, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # The HTTP status behind the failure, when a response arrived (for the ledger).
        self.http_status = http_status
        # How many requests were sent before giving up (set by the transport).
        self.attempts = 0
        # The headers of the HTTP response behind the failure, if any (for the -v trace).
        self.headers: Mapping[str, str] = {}


class UsageError(EvocliError):
    """The command line itself is wrong (a bad option value)."""

    code = ExitCode.USAGE


class IncompleteError(EvocliError):
    """The answer is incomplete: cut at the token limit, stopped by the filter, or without text."""

    code = ExitCode.INCOMPLETE


class RejectedError(EvocliError):
    """The answer is rejected: it fails its schema, has no block to extract, or is a refusal."""

    code = ExitCode.REJECTED


class InputError(EvocliError):
    """Bad input: an empty prompt, malformed YAML, a request the API refused as invalid."""

    code = ExitCode.DATAERR


class NoInputError(EvocliError):
    """An input file is missing or unreadable."""

    code = ExitCode.NOINPUT


class OutputError(EvocliError):
    """An output file cannot be created or written."""

    code = ExitCode.CANTCREAT


class CreditsError(EvocliError):
    """The account has run out of credits (HTTP 402)."""

    code = ExitCode.UNAVAILABLE


class TemporaryError(EvocliError):
    """A failure that may pass: rate limit, 5xx, timeout, connection error."""

    code = ExitCode.TEMPFAIL


class ProtocolError(EvocliError):
    """The server sent something that is not a valid answer (malformed body, broken stream)."""

    code = ExitCode.PROTOCOL


class AuthError(EvocliError):
    """The key was refused (HTTP 401/403)."""

    code = ExitCode.NOPERM


class ConfigError(EvocliError):
    """Bad configuration: no key, a bad config file or key command, an insecure base URL."""

    code = ExitCode.CONFIG


class BudgetError(EvocliError):
    """A batch run reached its --max-cost or --max-total-tokens: lines left unsent."""

    code = ExitCode.UNAVAILABLE
