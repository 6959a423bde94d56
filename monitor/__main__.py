"""`python -m monitor` is the same as the `monitor` console script."""

from monitor.cli.main import entry

entry()
