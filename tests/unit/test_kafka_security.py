"""Kafka TLS and SASL/SCRAM from settings, as the producer, admin client and broker take them."""

import datetime
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import ValidationError

from fulfilkit.settings import ServiceSettings

STRONG = "kafka-password-" + "Vq7Jm2Xr9Lc4Tn8Wb1"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ENVIRONMENT",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTERNAL_CALLERS", '{"gateway": "' + "a" * 64 + '"}')


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fulfil test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_plaintext_by_default_adds_nothing() -> None:
    security = ServiceSettings().kafka_security
    assert security.protocol == "PLAINTEXT"
    assert security.broker_security() is None and security.client_options() == {}


def test_sasl_scram_over_tls_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "fulfil-orders")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", STRONG)
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))
    security = ServiceSettings().kafka_security

    options = security.client_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "fulfil-orders",
        "sasl_plain_password": STRONG,
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "fulfil test CA"),),)
    ]
    broker_security = security.broker_security()
    assert isinstance(broker_security, SASLScram512) and broker_security.use_ssl


def test_scram_sha_256_and_tls_alone(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", STRONG)
    assert isinstance(ServiceSettings().kafka_security.broker_security(), SASLScram256)
    assert ServiceSettings().kafka_security.client_options()["sasl_mechanism"] == "SCRAM-SHA-256"

    tls = ServiceSettings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(ca_file),
        kafka_sasl_username="",
        kafka_sasl_password="",
    ).kafka_security
    options = tls.client_options()
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    assert type(tls.broker_security()) is BaseSecurity


async def test_the_clients_and_the_broker_accept_the_options(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password=STRONG,
        kafka_ssl_cafile=str(ca_file),
    )
    options = settings.kafka_security.client_options()
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **options)
    assert producer.client._security_protocol == "SASL_SSL"
    assert producer.client._sasl_mechanism == "SCRAM-SHA-512"
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **options)
    assert admin._client._security_protocol == "SASL_SSL"
    broker = KafkaBroker("127.0.0.1:1", security=settings.kafka_security.broker_security())
    consumer_options = broker.config.broker_config.builder.keywords  # what its consumers get
    assert consumer_options["security_protocol"] == "SASL_SSL"
    assert consumer_options["sasl_plain_password"] == STRONG


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_ssl_cafile": "/etc/ca.pem"},
            "KAFKA_SSL_\\* files are given but KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.pem"},
            "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together",
        ),
        ({"kafka_security_protocol": "TLS"}, "Input should be 'PLAINTEXT'"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "GSSAPI",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": STRONG,
            },
            "Input should be 'SCRAM-SHA-256'",
        ),
    ],
)
def test_inconsistent_kafka_security_is_refused_at_start(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings(environment="development", **fields)


def test_outside_development_the_sasl_password_must_be_strong_and_never_in_clear() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SASL_PASSWORD is shorter than 32"):
        ServiceSettings(
            kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password="kafka"
        )
    with pytest.raises(ValidationError, match="PLAIN sends the password in clear"):
        ServiceSettings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="u",
            kafka_sasl_password=STRONG,
        )
    assert ServiceSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="u",
        kafka_sasl_password="kafka",
        environment="development",
    )
