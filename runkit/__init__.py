"""What allconvnet.py needs around the blog's listing: flags, data, session, records, guards."""
from runkit.errors import Diverged, Failure, Interrupted, Refused, WriteFailed  # noqa: F401
