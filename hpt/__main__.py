"""``python -m hpt``: the same as the ``hpt`` command."""

import sys

from hpt.cli import main

sys.exit(main())
