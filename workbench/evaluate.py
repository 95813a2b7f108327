"""``python -m workbench.evaluate``, the name the issues and the developers' guide use: the
command line lives in ``workbench.cli.evaluate``."""

import sys

from workbench.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
