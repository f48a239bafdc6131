"""How the platform's Kafka clients authenticate and encrypt: settings turned into the options
of FastStream's broker (a `faststream.security` object) and of aiokafka's clients (producer,
admin, consumers: FastStream's own translation of that object).

PLAINTEXT by default (the local launcher's broker); production brokers take TLS (`SSL`) and
SASL/SCRAM over TLS (`SASL_SSL`). See docs/security.md.
"""

import ssl
from typing import Any, Literal

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel, ConfigDict, model_validator

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]
SASL_CLASSES: dict[str, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


class KafkaSecurity(BaseModel):
    model_config = ConfigDict(frozen=True)

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_cafile: str = ""  # empty: the system's trusted CAs
    ssl_certfile: str = ""  # client certificate, for brokers that require mutual TLS
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> "KafkaSecurity":
        if self.uses_sasl and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs"
                " KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if not self.uses_tls and (self.ssl_cafile or self.ssl_certfile or self.ssl_keyfile):
            raise ValueError(
                f"KAFKA_SSL_* files are given but KAFKA_SECURITY_PROTOCOL is"
                f" {self.protocol}; use SSL or SASL_SSL"
            )
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the broker's certificate (against KAFKA_SSL_CAFILE or the system's CAs)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile or None)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def broker_security(self) -> BaseSecurity | None:
        """For `faststream.kafka.KafkaBroker(security=...)`."""
        if self.protocol == "PLAINTEXT":
            return None
        context = self.ssl_context()
        if not self.uses_sasl:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        return SASL_CLASSES[self.sasl_mechanism](
            self.sasl_username, self.sasl_password, ssl_context=context, use_ssl=self.uses_tls
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        return parse_security(self.broker_security())
