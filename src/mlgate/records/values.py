"""Values that go into records: single-line safe text and canonical version numbers.

Every value mlgate copies into a commit message, a tag or a file name comes from somewhere a
user controls (a command-line option, an MLflow tag the model's author set, a report). A value
is written only if it reads back as itself: no control character (a newline would start a new
trailer, a carriage return hides text on a terminal), no leading or trailing whitespace (git
trims it, so it would read back different), not empty where a value is required.
"""

from __future__ import annotations

import re
import unicodedata

from mlgate.errors import BadInputError

_VERSION_RE = re.compile(r"[0-9]+")
# What git's interpret-trailers reads as a trailer line: a token of letters, digits and '-',
# optional spaces, then ':' (trailer.c find_separator).
TRAILER_LIKE = re.compile(r"^[A-Za-z0-9-]+ *:")


def unsafe_char(value: str) -> str | None:
    """The first character that has no place in a one-line record value, or None."""
    for ch in value:
        cat = unicodedata.category(ch)
        # Cc: C0/C1 controls (\n, \r, \t, \x1b ...); Cf: invisible format characters (bidi
        # overrides) that make text read differently from what it is; Zl/Zp: line and
        # paragraph separators, which str.splitlines() treats as newlines; Cs: lone surrogates
        # git cannot store.
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return ch
    return None


def check_text(value: object, field: str, *, required: bool = True) -> str:
    """`value` as one safe line, or BadInputError naming `field` (exit 2)."""
    if not isinstance(value, str):
        raise BadInputError(f"{field}: want text, got {type(value).__name__}")
    if not value:
        if required:
            raise BadInputError(f"{field}: empty")
        return value
    bad = unsafe_char(value)
    if bad is not None:
        raise BadInputError(
            f"{field}: {value!r} contains the control character {bad!r}; it would change the "
            "record it is written into, so nothing was written"
        )
    if value != value.strip():
        raise BadInputError(f"{field}: {value!r} has leading or trailing whitespace")
    return value


def canonical_version(value: object, field: str = "--version") -> str:
    """A registry version number in its one spelling: the positive integer, without leading
    zeros (`002` -> `2`). MLflow reads `002` as version 2, so comparing spellings as text would
    let a quarantined version back in under another name. Anything else (`+2`, ` 2`, `2.0`,
    other scripts' digits) is refused, naming `field`."""
    text = value if isinstance(value, str) else str(value) if isinstance(value, int) else None
    if text is None or not _VERSION_RE.fullmatch(text) or int(text) == 0:
        raise BadInputError(
            f"{field}: {value!r} is not a model version number (a positive integer like 3)"
        )
    return str(int(text))


def is_version_number(value: str) -> bool:
    """True for anything `canonical_version` accepts (an alias is not)."""
    return bool(_VERSION_RE.fullmatch(value)) and int(value) > 0
