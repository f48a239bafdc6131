"""`python -m gateway [serve] [--host H] [--port P]` serves the gateway with uvicorn (uvloop,
httptools); `python -m gateway migrate` applies its migrations and exits (see
`fulfilkit.commands`). Tenants and keys: `fulfil tenants`
(or `python -m gateway.cli` from the database, for first setup)."""

import sys
from pathlib import Path

from fulfilkit.commands import main

if __name__ == "__main__":
    sys.exit(main("gateway", "gateway.app:create_app", Path(__file__).with_name("migrations")))
