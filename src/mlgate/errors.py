"""Errors that map onto the CLI's exit codes.

Every command shares one contract: 0 success / PASS, 1 gate FAIL, 2 usage or bad input,
3 INCONCLUSIVE or WAIT. Library code raises these; the CLI shell turns them into a message and
an exit code, so no user ever sees a traceback for a problem they can fix.

What a user sees must never carry a credential: `redact` is the one place that takes them out
(user info in URLs, token-like query parameters, authorization headers, and the values of
known secret settings registered with `register_secret`). Errors redact their own message when
made, the CLI's error printer and the log record factory (`install_log_redaction`) redact again,
so a secret that reaches any of them by another road is still not printed.
"""

from __future__ import annotations

import logging
import re
import threading

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<info>[^/@\s'\"]+)@")
_SECRET_QUERY = re.compile(
    r"(?i)(?P<key>[?&;](?:access_token|token|private_token|password|passwd|pwd|secret|"
    r"client_secret|api_key|apikey|key|sig|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token)=)[^&\s#'\"]+"
)
_AUTH_HEADER = re.compile(r"(?i)\b(?P<key>authorization:\s*(?:bearer|token|basic)\s+)\S+")
# A value shorter than this is not registered: masking every "abc" in a message helps no one.
_MIN_SECRET = 6
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask `value` wherever it appears from now on (a token or password the process holds)."""
    if value and len(value.strip()) >= _MIN_SECRET:
        with _secrets_lock:
            _secrets.add(value.strip())


def _userinfo(match: re.Match[str]) -> str:
    user, sep, _ = match.group("info").partition(":")
    # user:secret@ keeps the user; a lone token@ (https://TOKEN@host) is all secret.
    return f"{match.group('scheme')}{user}:{MASK}@" if sep else f"{match.group('scheme')}{MASK}@"


def redact(text: str) -> str:
    """`text` without credentials: URL user info, token query parameters, authorization
    headers and every registered secret value are replaced by ***."""
    if not text:
        return text
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _SECRET_QUERY.sub(lambda m: m.group("key") + MASK, text)
    return _AUTH_HEADER.sub(lambda m: m.group("key") + MASK, text)


_factory_installed = False


def install_log_redaction() -> None:
    """Every log record's message redacted where it is made, whatever handler prints it."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)  # type: ignore[arg-type]
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's own problem
            return record
        record.msg, record.args = redact(message), ()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class MlgateError(Exception):
    """Base class: a problem with a clear message and an exit code."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.problems = [redact(p) for p in problems or []]

    def __str__(self) -> str:
        if not self.problems:
            return redact(self.message)
        return redact(self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems))


class BadInputError(MlgateError):
    """Bad input: a file, field or column is wrong. Exit 2."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInputError):
    """A config or policy file does not validate. The message names the file and field."""


class ExternalServiceError(MlgateError):
    """A server mlgate depends on (MLflow, registry, git remote) did not answer as expected."""

    exit_code = EXIT_BAD_INPUT


class GateFailed(MlgateError):
    exit_code = EXIT_FAIL


class Inconclusive(MlgateError):
    exit_code = EXIT_INCONCLUSIVE
