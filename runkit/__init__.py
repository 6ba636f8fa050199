"""What allconvnet.py needs around the blog's listing: flags, data, session, records, guards."""


class Refused(Exception):
    """A run that cannot start or go on; str() is the one line the user reads (exit code 2)."""


class Diverged(Exception):
    """The training loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `signum` says which."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
