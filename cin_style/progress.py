"""Progress bars and log output: one tqdm bar on stderr, shown while the
``cin_style`` logger is at INFO — the CLI sets that up (``-q`` raises it to
WARNING); a library caller who configures no logging gets neither bars nor
chatter."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

LOGGER = "cin_style"


def progress_bar(total: int | None, desc: str, initial: int = 0, enabled: bool = True) -> tqdm:
    """A bar to ``update(n)``; on a terminal it redraws, in a log file it
    writes a line every 30 s (set ``bar.total`` to change the goal)."""
    tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
    return tqdm(
        total=total,
        desc=desc,
        initial=initial,
        file=sys.stderr,
        dynamic_ncols=tty,
        mininterval=0.1 if tty else 30.0,
        ascii=not tty,
        disable=not enabled or not logging.getLogger(LOGGER).isEnabledFor(logging.INFO),
    )


@contextmanager
def progress(total: int | None, desc: str, initial: int = 0, enabled: bool = True) -> Iterator[tqdm]:
    """``progress_bar`` for the length of a block, with log lines printed above
    the bar instead of through it; closed however the block ends."""
    bar = progress_bar(total, desc, initial, enabled)
    try:
        with logging_redirect_tqdm([logging.getLogger(LOGGER)]):
            yield bar
    finally:
        bar.close()


def configure_logging(quiet: bool = False) -> None:
    """Log lines (INFO, or WARNING with ``quiet``) to the current stderr, message only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(LOGGER)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
