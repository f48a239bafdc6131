"""`python -m stock [serve]` serves the stock service;
`python -m stock migrate` applies its migrations and exits (`fulfilkit.commands`)."""

import sys
from pathlib import Path

from fulfilkit.commands import main

if __name__ == "__main__":
    sys.exit(main("stock", "stock.app:create_app", Path(__file__).with_name("migrations")))
