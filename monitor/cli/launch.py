"""The `monitor` command's first module: it loads the application with the collector paused.

Importing the application creates tens of thousands of objects that live as long as the
process, and the cyclic garbage collector, triggered by allocation counts, walks them over and
over while they are being created. Next to nothing an import makes is garbage, so the
collector is paused until the modules are loaded; monitor.cli.main.entry then freezes them
and resumes it.
"""

from __future__ import annotations

import gc


def entry() -> None:
    """The `monitor` console script and `python -m monitor`."""
    gc.disable()
    from monitor.cli.main import entry as main_entry  # noqa: PLC0415 (the point of it)

    main_entry()
