"""``python -m aevb`` runs the command line."""

from aevb.cli import exit_process, main

exit_process(main())
