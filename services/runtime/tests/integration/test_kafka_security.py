"""The runtime's Kafka clients on a broker that takes SASL_SSL with SCRAM-SHA-512 only.

A Kafka of its own (the embedded one plus a SASL_SSL listener with a certificate of a test CA);
the user is created with the `kafka-configs` command of deploy/kafka/README.md.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker

from ejsika_contracts import HOUSEHOLD
from ejsika_runtime.dead_letter_tool import partitions_of
from ejsika_runtime.embedded import free_port
from ejsika_runtime.embedded.kafka import EmbeddedKafka, ensure_jars
from ejsika_runtime.kafka import broker_security, create_topics, new_producer, security_options
from ejsika_runtime.settings import Settings

USER, PASSWORD = "registry", f"pw-{uuid.uuid4().hex}"


class ScramKafka(EmbeddedKafka):
    """The embedded Kafka with one more listener, SASL_SSL, that offers SCRAM-SHA-512 only."""

    def __init__(self, state_dir: Path, keystore: Path) -> None:
        super().__init__(state_dir, port=free_port(), controller_port=free_port(), progress=lambda _: None)
        self.sasl_port, self.keystore = free_port(), keystore

    def _write_config(self) -> Path:
        props = super()._write_config()
        plain, controller, sasl = self.port, self.controller_port, self.sasl_port
        with props.open("a") as extra:  # later keys win
            extra.write(
                f"listeners=PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{controller},"
                f"SASL_SSL://127.0.0.1:{sasl}\n"
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{sasl}\n"
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL\n"
                "listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512\n"
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;\n"
                "ssl.keystore.type=PEM\n"
                f"ssl.keystore.location={self.keystore}\n"
            )
        return props

    def add_scram_user(self, name: str, password: str) -> None:
        # kafka-configs.sh is this class on Kafka's classpath.
        java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else shutil.which("java")
        command = [str(java), "-cp", str(ensure_jars() / "*"), "kafka.admin.ConfigCommand",
                   "--bootstrap-server", self.bootstrap, "--alter",
                   "--add-config", f"SCRAM-SHA-512=[iterations=8192,password={password}]",
                   "--entity-type", "users", "--entity-name", name]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def tls_files(folder: Path) -> tuple[Path, Path]:
    """A test CA (PEM) and a broker keystore (PEM: key + certificate for 127.0.0.1 signed by the CA)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, ca, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, broker_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e-JSiKa test CA")])
    ca = certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    broker = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name,
                         broker_key.public_key(), ca_key, ca=False,
                         san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cafile, keystore = folder / "ca.crt", folder / "kafka.keystore.pem"
    cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(
        broker_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        + broker.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM))
    return cafile, keystore


@pytest.fixture(scope="module")
def scram_kafka(tmp_path_factory):
    pytest.importorskip("cryptography")
    folder = tmp_path_factory.mktemp("scram-kafka")
    cafile, keystore = tls_files(folder)
    with ScramKafka(folder, keystore) as kafka:
        kafka.add_scram_user(USER, PASSWORD)
        yield kafka, cafile


def secured(kafka: ScramKafka, cafile: Path, password: str = PASSWORD) -> Settings:
    return Settings(kafka_bootstrap=f"127.0.0.1:{kafka.sasl_port}", kafka_security_protocol="SASL_SSL",
                    kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=USER,
                    kafka_sasl_password=password, kafka_ssl_cafile=str(cafile))


async def test_every_client_of_the_runtime_works_over_sasl_ssl(scram_kafka):
    kafka, cafile = scram_kafka
    settings = secured(kafka, cafile)
    bootstrap = settings.kafka_bootstrap

    created = await create_topics(bootstrap, settings=settings)  # admin client
    assert HOUSEHOLD.name in created and HOUSEHOLD.dead_letter in created
    assert len(await partitions_of(bootstrap, HOUSEHOLD.dead_letter, settings)) == HOUSEHOLD.partitions

    producer = new_producer(bootstrap, "test-relay", settings)  # the relay's producer
    await producer.start()
    try:
        await producer.send_and_wait(HOUSEHOLD.name, b"over TLS", key=b"k", partition=0)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(HOUSEHOLD.name, bootstrap_servers=bootstrap, group_id="registry",
                                auto_offset_reset="earliest", **security_options(settings))
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
        assert record.value == b"over TLS"
    finally:
        await consumer.stop()

    broker = KafkaBroker(bootstrap, client_id="test-broker", security=broker_security(settings))  # FastStream
    await broker.start()
    try:
        assert await broker.ping(timeout=10)
        await broker.publish(b"from faststream", HOUSEHOLD.name, key=b"k")
    finally:
        await broker.stop()


async def test_a_wrong_password_is_refused(scram_kafka):
    kafka, cafile = scram_kafka
    settings = secured(kafka, cafile, password="not-the-password")
    producer = new_producer(settings.kafka_bootstrap, "test-wrong", settings)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


async def test_plaintext_clients_cannot_use_the_sasl_ssl_listener(scram_kafka):
    kafka, _ = scram_kafka
    producer = new_producer(f"127.0.0.1:{kafka.sasl_port}", "test-plain")  # no settings: PLAINTEXT
    with pytest.raises((KafkaError, asyncio.TimeoutError)):
        await asyncio.wait_for(producer.start(), 15)
    await producer.stop()
