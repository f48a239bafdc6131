"""Bundles: a product sold as a set of others (its `components`). No I/O here.

A bundle that is not `assembled` has no stock of its own: a sale line of it reserves its
components (the line's quantity times each component's), all of them or none, in the same
transaction as the sale's other lines. A component may itself be such a bundle (expanded
in turn) but no bundle may lead back to itself. An assembled bundle is built into stock of
its own (`POST /stock/builds`) and is reserved like any product.
"""

from collections.abc import Iterable, Mapping
from math import inf

# (sku, quantity) per component, as stored on the product
Components = tuple[tuple[str, int], ...]
# The bundles a sale may name that expand into their components: sku -> components (those
# of assembled bundles are not here: they are reserved as products)
Definitions = Mapping[str, Components]

MAX_DEPTH = 16  # bundles of bundles, at most this deep
MAX_COMPONENTS = 100  # components of one bundle


def components_of(value: Iterable[Mapping[str, object]] | None) -> Components | None:
    """A product's stored `components` (a JSON list) as pairs, or None for no bundle."""
    if value is None:
        return None
    return tuple((str(c["sku"]), int(c["quantity"])) for c in value)  # type: ignore[call-overload]


def component_errors(
    sku: str,
    components: Components,
    known: Iterable[str],
    bundles: Mapping[str, Components],
) -> list[tuple[int, str]]:
    """What is wrong with `components` for the product `sku`, as (index, message): a SKU
    that names no product (`known` holds those that do), the product itself, a SKU named
    twice, or a component that leads back to `sku` through the components of the tenant's
    other bundles (`bundles`: every bundle's components, assembled or not)."""
    known = set(known)
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, (component, _) in enumerate(components):
        if component == sku:
            errors.append((i, "a bundle cannot contain itself"))
        elif component in seen:
            errors.append((i, f"{component!r} is named twice: give its quantity once"))
        elif component not in known:
            errors.append((i, f"no product with sku {component!r}"))
        elif _leads_to(component, sku, bundles):
            errors.append((i, f"{component!r} contains {sku!r}: bundles cannot form a cycle"))
        seen.add(component)
    return errors


def _leads_to(start: str, target: str, bundles: Mapping[str, Components]) -> bool:
    stack, visited = [start], set()
    while stack:
        sku = stack.pop()
        if sku == target:
            return True
        if sku in visited:
            continue
        visited.add(sku)
        stack.extend(c for c, _ in bundles.get(sku, ()))
    return False


def expand(lines: Iterable[tuple[str, int]], definitions: Definitions) -> list[tuple[str, int]]:
    """Lines with each bundle line replaced by its components (quantity times each
    component's, bundles of bundles in turn), in order; other lines as they are. The
    definitions hold no cycle (refused when a bundle is defined)."""
    out: list[tuple[str, int]] = []
    for sku, quantity in lines:
        out.extend(_expand_one(sku, quantity, definitions, 0))
    return out


def _expand_one(
    sku: str, quantity: int, definitions: Definitions, depth: int
) -> list[tuple[str, int]]:
    parts = definitions.get(sku)
    if parts is None or depth >= MAX_DEPTH:
        return [(sku, quantity)]
    out: list[tuple[str, int]] = []
    for component, each in parts:
        out.extend(_expand_one(component, quantity * each, definitions, depth + 1))
    return out


def per_bundle(sku: str, definitions: Definitions) -> dict[str, int]:
    """The units of each stocked SKU one bundle takes (summed when named more than once)."""
    need: dict[str, int] = {}
    for component, quantity in expand([(sku, 1)], definitions):
        need[component] = need.get(component, 0) + quantity
    return need


def derived_available(need: Mapping[str, int], sellable: Mapping[str, int]) -> int:
    """How many bundles the stock can make: the minimum over its components of
    floor(sellable / quantity per bundle); a component with no stock counts 0; a bundle
    of nothing (or of infinite products only, left out of `need`) counts 0."""
    fewest: float = inf
    for component, quantity in need.items():
        fewest = min(fewest, sellable.get(component, 0) // quantity)
    return 0 if fewest == inf else int(fewest)
