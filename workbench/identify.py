"""``python -m workbench.identify``, the name the issues and the developers' guide use: the
command line lives in ``workbench.cli.identify``."""

import sys

from workbench.cli.identify import main

if __name__ == "__main__":
    sys.exit(main())
