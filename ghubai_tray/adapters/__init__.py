"""Everything that talks to the world outside the process: hub, model server, OS."""

import sys

# httpx's package imports its command-line tool (click, pygments, rich) and keeps what
# part of it loaded when one is missing: 3.5 MB for the life of the tray in a Python that
# has click and pygments but not rich (a developer's, ``make run``). The tool is never run
# here; a None entry makes that import fail at once, which httpx expects and handles.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
