"""What every command module of the command line shares: the one-line error, the "did you mean", the command
line as recorded in results files."""
from __future__ import annotations

import difflib
import shlex
import sys


def fail(message: str) -> int:
    """Print ``lightning-mad: error: <message>`` (one line) and return the exit status 2."""
    print(f"lightning-mad: error: {message}", file=sys.stderr)
    return 2


def suggest(word: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def command_line(name: str, args: list[str]) -> str:
    """``lightning-mad <name> <args>``, quoted as a shell would need it."""
    return " ".join(["lightning-mad", name, *map(shlex.quote, args)])
