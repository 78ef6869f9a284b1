"""`python -m providerhub`: the providerhub command."""

import sys

from .cli import main

sys.exit(main())
