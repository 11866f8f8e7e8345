"""The Kafka security settings and the client options built from them (no broker needed)."""

import datetime
import ssl

import pytest
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import ValidationError

from ejsika_runtime.kafka import broker_security, new_producer, security_options
from ejsika_runtime.settings import Settings

PASSWORD = "s3cr3t-Kafka-pa55word"


@pytest.fixture(autouse=True)
def no_kafka_environment(monkeypatch):
    # The settings read EJSIKA_* variables: the shell running the tests must not change them.
    for name in ("PROTOCOL", "MECHANISM", "USERNAME", "PASSWORD", "CAFILE", "CERTFILE", "KEYFILE"):
        for prefix in ("EJSIKA_KAFKA_SECURITY_", "EJSIKA_KAFKA_SASL_", "EJSIKA_KAFKA_SSL_"):
            monkeypatch.delenv(prefix + name, raising=False)


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A self-signed certificate and its key, as PEM files: (certfile, keyfile)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ejsika-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("pem")
    certfile, keyfile = folder / "client.crt", folder / "client.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def sasl(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", **more):
    return Settings(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
                    kafka_sasl_username="registry", kafka_sasl_password=PASSWORD, **more)


# Defaults: exactly today's clients.

def test_plaintext_by_default_adds_nothing():
    settings = Settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert security_options(settings) == {}
    assert security_options(None) == {}
    assert broker_security(settings) is None


async def test_plaintext_producer_is_configured_as_before():
    producer = new_producer("127.0.0.1:9092", "t", Settings())
    assert producer.client._security_protocol == "PLAINTEXT"
    assert producer.client._sasl_plain_password is None and producer.client._ssl_context is None


# Options per protocol.

def test_sasl_ssl_scram_options():
    options = security_options(sasl())
    assert options.keys() == {"security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
                              "sasl_plain_password"}
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "registry"
    assert options["sasl_plain_password"] == PASSWORD
    assert options["sasl_plain_password"].encode() == PASSWORD.encode()  # what aiokafka hashes
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_sasl_plaintext_options_have_no_tls(mechanism):
    options = security_options(sasl("SASL_PLAINTEXT", mechanism))
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
                       "sasl_plain_username": "registry", "sasl_plain_password": PASSWORD}


def test_ssl_options_have_no_sasl():
    options = security_options(Settings(kafka_security_protocol="SSL"))
    assert options.keys() == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"


def test_tls_files_are_loaded(pem):
    certfile, keyfile = pem
    settings = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=certfile,
                        kafka_ssl_certfile=certfile, kafka_ssl_keyfile=keyfile)
    context = security_options(settings)["ssl_context"]
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ejsika-test"),),)]


def test_an_unreadable_tls_file_fails_with_the_setting_named(tmp_path):
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="registry",
                        kafka_sasl_password=PASSWORD, kafka_ssl_cafile=str(tmp_path / "missing.crt"))
    with pytest.raises(ValueError, match="EJSIKA_KAFKA_SSL_CAFILE"):
        security_options(settings)


async def test_clients_get_the_options():
    producer = new_producer("127.0.0.1:9092", "t", sasl())
    client = producer.client
    assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_username) == \
        ("SASL_SSL", "SCRAM-SHA-512", "registry")
    assert client._sasl_plain_password == PASSWORD and client._ssl_context is not None


# The FastStream broker: the same options, through its `security=` object.

@pytest.mark.parametrize(("protocol", "mechanism", "kind"), [
    ("SASL_SSL", "SCRAM-SHA-512", SASLScram512),
    ("SASL_SSL", "SCRAM-SHA-256", SASLScram256),
    ("SASL_SSL", "PLAIN", SASLPlaintext),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", SASLScram512),
])
def test_broker_security_gives_faststream_the_same_options(protocol, mechanism, kind):
    settings = sasl(protocol, mechanism)
    security = broker_security(settings)
    assert type(security) is kind
    assert security.use_ssl == (protocol == "SASL_SSL")
    assert _comparable(parse_security(security)) == _comparable(security_options(settings))


def test_broker_security_for_tls_only():
    security = broker_security(Settings(kafka_security_protocol="SSL"))
    assert type(security) is BaseSecurity and security.use_ssl
    assert _comparable(parse_security(security)) == {"security_protocol": "SSL", "ssl_context": ssl.SSLContext}


def test_broker_is_built_with_the_security():
    from faststream.kafka import KafkaBroker

    broker = KafkaBroker("kafka:9092", security=broker_security(sasl()))
    options = broker._connection_kwargs
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "registry" and options["sasl_plain_password"] == PASSWORD


def _comparable(options: dict) -> dict:
    # Each call builds its own SSL context; compare its type. FastStream spells out ssl_context=None.
    return {k: type(v) if k == "ssl_context" else v for k, v in options.items() if v is not None}


# Validation: a wrong value or combination stops the service at start.

def test_sasl_needs_username_and_password():
    for missing in ({"kafka_sasl_username": "registry"}, {"kafka_sasl_password": PASSWORD},
                    {"kafka_sasl_username": "registry", "kafka_sasl_password": ""}):
        with pytest.raises(ValidationError, match="EJSIKA_KAFKA_SASL_USERNAME and EJSIKA_KAFKA_SASL_PASSWORD"):
            Settings(kafka_security_protocol="SASL_SSL", **missing)


@pytest.mark.parametrize(("field", "value"), [
    ("kafka_security_protocol", "TLS"),
    ("kafka_security_protocol", "sasl_ssl"),
    ("kafka_sasl_mechanism", "SCRAM-SHA-1"),
    ("kafka_sasl_mechanism", "GSSAPI"),
])
def test_unknown_values_are_rejected_with_the_allowed_ones(field, value):
    with pytest.raises(ValidationError) as error:
        Settings(**{field: value})
    assert field in str(error.value) and "Input should be" in str(error.value)


def test_credentials_without_sasl_are_rejected():
    with pytest.raises(ValidationError, match="does not authenticate with SASL"):
        Settings(kafka_sasl_username="registry", kafka_sasl_password=PASSWORD)
    with pytest.raises(ValidationError, match="does not authenticate with SASL"):
        Settings(kafka_security_protocol="SSL", kafka_sasl_password=PASSWORD)


def test_tls_files_without_tls_are_rejected():
    with pytest.raises(ValidationError, match="EJSIKA_KAFKA_SSL_CAFILE is set but .*PLAINTEXT does not use TLS"):
        Settings(kafka_ssl_cafile="/etc/ejsika/ca.crt")
    with pytest.raises(ValidationError, match="SASL_PLAINTEXT does not use TLS"):
        sasl("SASL_PLAINTEXT", kafka_ssl_certfile="/etc/ejsika/client.crt")


def test_a_key_needs_its_certificate():
    with pytest.raises(ValidationError, match="EJSIKA_KAFKA_SSL_KEYFILE needs EJSIKA_KAFKA_SSL_CERTFILE"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_keyfile="/etc/ejsika/client.key")


def test_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("EJSIKA_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("EJSIKA_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("EJSIKA_KAFKA_SASL_USERNAME", "monitoring")
    monkeypatch.setenv("EJSIKA_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("EJSIKA_KAFKA_SSL_CAFILE", "/etc/ejsika/kafka-ca/ca.crt")
    settings = Settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism, settings.kafka_sasl_username,
            settings.kafka_ssl_cafile) == ("SASL_SSL", "SCRAM-SHA-256", "monitoring", "/etc/ejsika/kafka-ca/ca.crt")
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD


# The password shows nowhere.

def test_password_is_not_in_the_settings_repr_or_str_or_dump():
    settings = sasl()
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert PASSWORD not in text
    assert "**********" in repr(settings)


def test_password_is_not_in_the_options_repr():
    for settings in (sasl(), sasl("SASL_PLAINTEXT", "PLAIN")):
        options = security_options(settings)
        for text in (repr(options), str(options), f"{options}", f"{options['sasl_plain_password']!r}"):
            assert PASSWORD not in text
        assert repr(broker_security(settings)).count(PASSWORD) == 0


@pytest.mark.parametrize("settings", [
    {"kafka_sasl_username": "registry", "kafka_sasl_password": PASSWORD},  # credentials without SASL
    {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": PASSWORD},  # no username
    {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": PASSWORD, "kafka_sasl_mechanism": "MD5"},
])
def test_password_is_not_in_validation_errors(settings):
    with pytest.raises(ValidationError) as error:
        Settings(**settings)
    # What a crash at start-up prints and logs. (`errors()` still carries the input for callers that ask.)
    assert PASSWORD not in str(error.value) and PASSWORD not in repr(error.value)
