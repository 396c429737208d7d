"""``python -m obo_auth.serving``: the local serving process (see server.py)."""

from obo_auth.serving.server import main

main()
