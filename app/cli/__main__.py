"""`python -m app.cli`: the same as `prescreen-bot`."""

from app.cli import main

raise SystemExit(main())
