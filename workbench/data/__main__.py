"""``python -m workbench.data``: the data command line lives in ``workbench.cli.data``."""

import sys

from workbench.cli.data import main

sys.exit(main())
