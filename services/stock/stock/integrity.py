"""`python -m stock.integrity` moved to the `fulfil` command line, which checks and rebuilds
through the gateway's admin API (`GET /api/v1/admin/stock/integrity`, every tenant or one):

    fulfil stock integrity check [--tenant ID]      exits 1 while anything disagrees
    fulfil stock integrity rebuild [--tenant ID]

The use cases are `stock.usecases.integrity`; this module only points there.
"""

import sys

MOVED = (
    "The stock integrity check is part of the `fulfil` command line, through the gateway's"
    " admin API:\n"
    "  fulfil stock integrity check [--tenant ID]     (FULFIL_URL, FULFIL_ADMIN_TOKEN)\n"
    "  fulfil stock integrity rebuild [--tenant ID]"
)


def main() -> None:
    print(MOVED, file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
