"""Errors that map onto the CLI's exit codes.

Every command shares one contract: 0 success / PASS, 1 gate FAIL, 2 usage or bad input,
3 INCONCLUSIVE or WAIT. Library code raises these; the CLI shell turns them into a message and
an exit code, so no user ever sees a traceback for a problem they can fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_BAD_INPUT = 2
EXIT_INCONCLUSIVE = 3


class MlgateError(Exception):
    """Base class: a problem with a clear message and an exit code."""

    exit_code: int = EXIT_BAD_INPUT

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


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
