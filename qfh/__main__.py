"""``python -m qfh``: see ``qfh.cli``."""

from qfh.cli import main

raise SystemExit(main())
