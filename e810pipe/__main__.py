"""Allow ``python -m e810pipe``."""

import sys

from .cli import main

sys.exit(main())
