"""``python -m regiontag``: the ``regiontag`` command, for environments without its console script."""

import sys

from regiontag.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
