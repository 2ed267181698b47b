"""``python -m genzoo.cli``: kept working now that the old module ``genzoo/cli.py`` is a package."""

from genzoo.cli import main

raise SystemExit(main())
