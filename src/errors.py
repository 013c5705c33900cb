"""The one exception type for a user's mistake, and the CLI wrapper that reports it."""
import sys
from typing import Callable


class UserError(Exception):
    """A mistake in what the user handed in: reported as one line, exit status 2."""


def run_cli(main: Callable[[], None]) -> None:
    """Run a command's main; a UserError becomes one line on stderr and exit status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
