"""``python -m simulator`` is the ``simulator`` command."""

from simulator.cli import main

raise SystemExit(main())
