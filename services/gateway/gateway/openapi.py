"""One OpenAPI document for the public API: the gateway's own paths plus the services' paths."""

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from fulfilkit.http.openapi import document_headers, document_problems, problem_components
from gateway.domain import API_PREFIX, TOKEN_PATH

log = logging.getLogger(__name__)

TITLE = "Fulfil API"
VERSION = "v1"
DESCRIPTION = (
    "The public API of the Fulfil order-fulfilment platform. Authenticate with"
    " `Authorization: Bearer <API key>`, or with an OAuth2 access token from"
    " `POST /api/v1/oauth/token` (client credentials). An optional version header"
    " (`X-API-Version: v1`, `Accept-Version: 1` or `X-OAKRA-API-VERSION: v1`) pins the"
    " version; without one the current version answers, and every answer names its version in"
    " `API-Version`. Lists page by `limit`/`offset` or `pageNumber`/`pageSize`. Errors are"
    " RFC 9457 `application/problem+json` documents with a `code`, except the token"
    " endpoint's, which follow RFC 6749."
)
FETCH_TIMEOUT_SECONDS = 5.0
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

SECURITY_SCHEMES = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant's API key, `fk_...`, or an OAuth2 access token, `fkt_...`",
    },
    "oauth2": {
        "type": "oauth2",
        "description": "A tenant's OAuth2 client, by the client credentials grant",
        "flows": {
            "clientCredentials": {
                "tokenUrl": TOKEN_PATH,
                "scopes": {
                    "sales:read": "Read sales",
                    "sales:write": "Create, change and cancel sales",
                    "stock:read": "Read products, locations and stock",
                    "stock:write": "Change products, locations and stock",
                    "fulfillment:read": "Read fulfillments",
                    "fulfillment:write": "Initiate and change fulfillments",
                    "webhooks:read": "Read webhook endpoints and deliveries",
                    "webhooks:write": "Change webhook endpoints",
                    "admin": "Operator endpoints; a tenant's own keys and clients",
                },
            }
        },
    },
    "clientBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "An OAuth2 client's `client_id` and `client_secret` (token endpoint)",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's `ADMIN_TOKEN`",
    },
}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _is_public(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _rewrite_refs(node: Any, renamed: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: renamed.get(v, v)
            if k == "$ref" and isinstance(v, str)
            else _rewrite_refs(v, renamed)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(v, renamed) for v in node]
    return node


def _mergeable(components: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (kind, entries)
        for kind, entries in components.items()
        if kind != "securitySchemes" and isinstance(entries, dict)
    ]


def _merge_components(
    into: dict[str, dict[str, Any]], service: str, components: Mapping[str, Any]
) -> dict[str, str]:
    """Adds a service's components; a name already taken by a different definition is
    renamed `<Service><Name>`. Returns the `$ref` renames to apply to that service's doc."""
    prefix = service.title().replace("_", "")
    renamed: dict[str, str] = {}
    while True:  # a rename can make a referring definition differ too: repeat until stable
        found: dict[str, str] = {}
        for kind, entries in _mergeable(components):
            taken = into.get(kind, {})
            for name, definition in entries.items():
                ref = f"#/components/{kind}/{name}"
                ours = _rewrite_refs(definition, renamed)
                if ref in renamed or taken.get(name, ours) == ours:
                    continue
                final = prefix + name
                while taken.get(final, ours) != ours:
                    final = prefix + final
                found[ref] = f"#/components/{kind}/{final}"
        if not found:
            break
        renamed.update(found)
    for kind, entries in _mergeable(components):
        target = into.setdefault(kind, {})
        for name, definition in entries.items():
            final = renamed.get(f"#/components/{kind}/{name}", name).rsplit("/", 1)[-1]
            target[final] = _rewrite_refs(definition, renamed)
    return renamed


def _public_operation(
    path: str, method: str, operation: dict[str, Any], *, forwarded: bool
) -> dict[str, Any]:
    path_parameters = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    document_headers(operation)
    return document_problems(method, operation, path_parameters, forwarded=forwarded)


def merge_openapi(
    gateway: Mapping[str, Any], services: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The public document: the gateway's own paths (security: admin token) first, then each
    service's `/api/v1` paths in service-name order (security: API key, the global default).

    The first definition of a path and method wins; schemas with the same name and the same
    definition are shared, different ones are renamed per service (`Stock` + `Address`).
    """
    components: dict[str, dict[str, Any]] = {
        **problem_components(),
        "securitySchemes": SECURITY_SCHEMES,
    }
    paths: dict[str, dict[str, Any]] = {}
    sources = [("gateway", gateway), *sorted(services.items())]
    for service, doc in sources:
        doc = copy.deepcopy(dict(doc))
        renamed = _merge_components(components, service, doc.get("components", {}))
        for path, item in doc.get("paths", {}).items():
            if not _is_public(path):
                continue
            merged = paths.setdefault(path, {})
            for method, operation in _rewrite_refs(item, renamed).items():
                if method not in HTTP_METHODS:
                    merged.setdefault(method, operation)
                elif method in merged:
                    log.warning("%s %s is defined twice; keeping the first", method, path)
                elif service == "gateway" and path == TOKEN_PATH:
                    merged[method] = document_headers(operation)  # RFC 6749 errors, no problems
                elif service == "gateway":
                    operation.setdefault("security", [{"adminToken": []}])
                    merged[method] = _public_operation(path, method, operation, forwarded=False)
                else:
                    operation.setdefault("tags", [service])
                    merged[method] = _public_operation(path, method, operation, forwarded=True)
    _drop_unreferenced(components["schemas"], FASTAPI_VALIDATION_SCHEMAS, paths)
    return {
        "openapi": gateway.get("openapi", "3.1.0"),
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "paths": dict(sorted(paths.items())),
        "components": components,
        "security": [{"apiKey": []}],
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _drop_unreferenced(schemas: dict[str, Any], names: tuple[str, ...], paths: Any) -> None:
    for name in names:  # in order: a dropped schema no longer holds its own references
        others = {other: schema for other, schema in schemas.items() if other != name}
        if f"#/components/schemas/{name}" not in _refs([paths, others]):
            schemas.pop(name, None)


class PublicApiDocument:
    """Builds the merged document on demand; keeps it for `ttl_seconds` once every service
    has answered, so a redeployed service's new routes show without a gateway restart."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        service_urls: Mapping[str, str],
        ttl_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._service_urls = dict(service_urls)
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: dict[str, Any] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, gateway_document: Mapping[str, Any]) -> dict[str, Any]:
        """The merged document, with `gateway_document` (the gateway's own routes) first."""
        async with self._lock:
            if self._cached is not None and self._clock() < self._expires:
                return self._cached
            names = list(self._service_urls)
            fetched = await asyncio.gather(*(self._fetch(n, self._service_urls[n]) for n in names))
            answered = {n: doc for n, doc in zip(names, fetched, strict=True) if doc is not None}
            document = merge_openapi(gateway_document, answered)
            if len(answered) == len(self._service_urls):
                self._cached, self._expires = document, self._clock() + self._ttl
            return document

    async def _fetch(self, service: str, base_url: str) -> dict[str, Any] | None:
        url = f"{base_url.rstrip('/')}/openapi.json"
        try:
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
            async with self._session.get(url, timeout=timeout) as response:
                response.raise_for_status()
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("no OpenAPI document from %s (%s): %s", service, url, exc)
            return None
        return document if isinstance(document, dict) else None
