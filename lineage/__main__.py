"""``python -m lineage`` runs the command line."""

from lineage.cli.app import main

raise SystemExit(main())
