"""``python -m workbench.bench``, the name the issues and the developers' guide use: the
command line lives in ``workbench.cli.bench``."""

import sys

from workbench.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
