"""A typed Python client for the Fulfil platform's REST API and webhooks.

from fulfil_client import Client

with Client("http://127.0.0.1:8000", api_key="fk_...") as client:
    sale = client.sales.get("SO-1001")
    for sale in client.sales.list(status="pending"):
        ...
"""

from fulfil_client import models
from fulfil_client._async_client import AsyncClient
from fulfil_client._core import Call, ClientCredentials, RetryPolicy
from fulfil_client._sync_client import Client
from fulfil_client._version import __version__
from fulfil_client.errors import (
    AuthFailed,
    BadRequest,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    Duplicated,
    FulfilError,
    MethodNotAllowed,
    NotFound,
    PermissionDenied,
    PreconditionRequired,
    ProblemError,
    RateLimited,
    ServerError,
    TooLarge,
    Unavailable,
    ValidationFailed,
)
from fulfil_client.pagination import AsyncPaginator, Page, Paginator

__all__ = [
    "AsyncClient",
    "AsyncPaginator",
    "AuthFailed",
    "BadRequest",
    "Call",
    "Client",
    "ClientCredentials",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Duplicated",
    "FulfilError",
    "MethodNotAllowed",
    "NotFound",
    "Page",
    "Paginator",
    "PermissionDenied",
    "PreconditionRequired",
    "ProblemError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "TooLarge",
    "Unavailable",
    "ValidationFailed",
    "__version__",
    "models",
]
