"""`python -m infill_lsp` runs the same command line as `infill-lsp`."""

from infill_lsp.cli import main

raise SystemExit(main())
