"""``python -m aevb`` runs the command line."""

import sys

from aevb.cli import main

sys.exit(main())
