"""`python -m fulfilment [serve]` serves the fulfilment service;
`python -m fulfilment migrate` applies its migrations and exits (`fulfilkit.commands`)."""

import sys
from pathlib import Path

from fulfilkit.commands import main

if __name__ == "__main__":
    sys.exit(
        main("fulfilment", "fulfilment.app:create_app", Path(__file__).with_name("migrations"))
    )
