"""`python -m clients.batch ...` (see clients/batch/cli.py)."""

import sys

from clients.batch.cli import main

sys.exit(main())
