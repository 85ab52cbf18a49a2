"""`python -m mlc.testing.fuzz`: see `mlc.testing.fuzz.cli`."""

import sys

from mlc.testing.fuzz.cli import main

sys.exit(main())
