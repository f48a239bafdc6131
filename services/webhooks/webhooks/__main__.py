"""`python -m webhooks [serve]` serves the webhooks service;
`python -m webhooks migrate` applies its migrations and exits (`fulfilkit.commands`)."""

import sys
from pathlib import Path

from fulfilkit.commands import main

if __name__ == "__main__":
    sys.exit(main("webhooks", "webhooks.app:create_app", Path(__file__).with_name("migrations")))
