"""`python -m bot`: Easel's command line."""

import sys

from bot.cli import main

sys.exit(main())
