"""`python -m orders [serve]` serves the orders service;
`python -m orders migrate` applies its migrations and exits (`fulfilkit.commands`)."""

import sys
from pathlib import Path

from fulfilkit.commands import main

if __name__ == "__main__":
    sys.exit(main("orders", "orders.app:create_app", Path(__file__).with_name("migrations")))
