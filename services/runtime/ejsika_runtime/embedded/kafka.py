"""Single-node Apache Kafka 4 (KRaft, combined broker+controller) run from Maven Central jars."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from ._util import (
    EmbeddedError, Progress, check_port_free, maven, port_in_use, publish, run_checked, terminate, wait_ready,
)

KAFKA_VERSION = "4.3.1"
# Kafka's pom brings log4j-api/core but no SLF4J binding; this one must match its slf4j-api 1.7.
_LOG4J_SLF4J_BINDING = "org.apache.logging.log4j:log4j-slf4j-impl:2.25.4"
_MAIN_CLASS = "kafka.Kafka"
_STORAGE_TOOL = "kafka.tools.StorageTool"
_JVM_OPTS = [
    # Kafka's own start script sizes the heap like this. A heap that starts small keeps G1
    # running back-to-back concurrent cycles under load, about half of the broker's CPU.
    "-Xms1g",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    # Kafka still logs while the JVM exits; log4j's own hook would stop logging first and warn.
    "-Dlog4j2.shutdownHookEnabled=false",
]

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ejsika</groupId>
  <artifactId>embedded-kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>{binding_group}</groupId>
      <artifactId>{binding_artifact}</artifactId>
      <version>{binding_version}</version>
      <exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions>
    </dependency>
  </dependencies>
  <build>
    <pluginManagement>
      <plugins>
        <plugin>
          <groupId>org.apache.maven.plugins</groupId>
          <artifactId>maven-dependency-plugin</artifactId>
          <version>3.8.1</version>
        </plugin>
      </plugins>
    </pluginManagement>
  </build>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""

_SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs={log_dirs}
num.partitions=6
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
"""


def cache_dir() -> Path:
    return Path(os.environ.get("EJSIKA_CACHE_DIR") or Path.home() / ".cache" / "ejsika")


def ensure_jars(progress: Progress = print, version: str = KAFKA_VERSION) -> Path:
    """Return the folder holding the Kafka jars, fetching them with Maven on first use."""
    libs = cache_dir() / f"kafka-{version}" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = maven("the Kafka jars")
    progress(f"fetching Apache Kafka {version} jars from Maven Central (once)…")
    libs.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=libs.parent))
    try:
        group, artifact, binding_version = _LOG4J_SLF4J_BINDING.split(":")
        (work / "pom.xml").write_text(
            _POM.format(
                version=version,
                binding_group=group,
                binding_artifact=artifact,
                binding_version=binding_version,
            )
        )
        fetched = work / "libs"
        cmd = [mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(work / "pom.xml"),
               "dependency:copy-dependencies", f"-DoutputDirectory={fetched}", "-DincludeScope=runtime"]
        run_checked(cmd, f"fetching Kafka {version} with Maven", ok=lambda: any(fetched.glob("kafka_2.13-*.jar")))
        publish(fetched, libs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress(f"Kafka jars cached in {libs}")
    return libs


class EmbeddedKafka:
    """Kafka broker+controller on 127.0.0.1 with its data under `<state_dir>/kafka`."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        *,
        version: str = KAFKA_VERSION,
        progress: Progress = print,
        startup_timeout: float = 120.0,
    ) -> None:
        self.dir = Path(state_dir).resolve() / "kafka"
        self.port = port
        self.controller_port = controller_port
        self.version = version
        self.startup_timeout = startup_timeout
        self._progress = progress
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.dir / "server.log"

    def start(self) -> str:
        """Start Kafka (formatting storage on first use); block until it serves requests."""
        if self._proc is not None:
            return self.bootstrap
        java = _java()
        libs = ensure_jars(self._progress, self.version)
        pid_file = self.dir / "kafka.pid"
        for port in (self.port, self.controller_port):
            check_port_free(port, "Kafka", pid_file, _MAIN_CLASS)
        self.dir.mkdir(parents=True, exist_ok=True)
        props = self._write_config()
        base_cmd = [java, *_JVM_OPTS, f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
                    "-cp", str(libs / "*")]
        if not (self.dir / "data" / "meta.properties").exists():
            self._format(base_cmd, props)

        self._progress(f"starting Kafka {self.version} on {self.bootstrap}…")
        with open(self.dir / "kafka.out", "wb") as out:
            # Own session: a terminal Ctrl-C must not kill Kafka before the app shuts down cleanly.
            self._proc = subprocess.Popen(
                [*base_cmd, _MAIN_CLASS, str(props)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        pid_file.write_text(f"{self._proc.pid}\n")
        try:
            wait_ready(self._proc, self._serves_requests, name="Kafka", timeout=self.startup_timeout,
                       logs=[self.log_file, self.dir / "kafka.out"])
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        terminate(proc, signal.SIGTERM, timeout=30)
        (self.dir / "kafka.pid").unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_config(self) -> Path:
        # Truncate here, not via log4j append=false: Kafka re-inits log4j on shutdown, which would wipe the log.
        self.log_file.write_text("")
        (self.dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        props = self.dir / "server.properties"
        props.write_text(_SERVER_PROPERTIES.format(
            port=self.port, controller_port=self.controller_port, log_dirs=self.dir / "data"))
        return props

    def _format(self, base_cmd: list[str], props: Path) -> None:
        self._progress(f"formatting Kafka storage in {self.dir / 'data'}…")
        cmd = [*base_cmd, _STORAGE_TOOL, "format", "--cluster-id", _cluster_id(), "--config", str(props)]
        run_checked(cmd, "formatting Kafka storage")

    def _serves_requests(self) -> bool:
        return port_in_use(self.port) and _run_async(_has_live_broker(self.bootstrap))


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise EmbeddedError("Java 17+ is needed to run Kafka but `java` was not found (PATH / JAVA_HOME)")
    return java


def _cluster_id() -> str:
    while True:  # same encoding as Kafka's Uuid; a leading '-' would read as a CLI option
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


async def _has_live_broker(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        # KRaft metadata lists only unfenced brokers, so this also means topics can be created.
        return bool((await admin.describe_cluster())["brokers"])
    except Exception:
        return False
    finally:
        await admin.close()


def _run_async(coro):  # type: ignore[no-untyped-def]
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
    thread.start()
    thread.join()
    return result[0]
