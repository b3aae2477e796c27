"""`python -m kore_connect` is the `kore-connect` command (how the local twin starts its parts)."""

from kore_connect.cli import main

main()
