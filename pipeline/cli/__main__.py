"""``python -m pipeline.cli``: the ``codesuggest`` command."""

import sys

from pipeline.cli.main import main

sys.exit(main())
