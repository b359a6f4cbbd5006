"""Kafka: a single KRaft node (broker and controller) run from the jars Maven resolves."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import struct
import time
import uuid
from pathlib import Path

from .component import Component
from .config import HOST, KAFKA_LOG4J, KAFKA_POM, Config
from .errors import StackError
from .procs import (
    cmdline,
    ensure_port_free,
    mkdirs,
    port_accepts,
    require_command,
    run_checked,
    say,
    spawn_detached,
    terminate_pid,
    wait_ready,
    write_pid,
)

KAFKA_READY_TIMEOUT_S = 90.0


def kafka_address(cfg: Config) -> str:
    return f"{HOST}:{cfg.kafka_port} (controller {HOST}:{cfg.controller_port})"


def kafka_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    return "kafka.Kafka" in args and str(cfg.kafka_properties) in args


def kafka_api_versions(port: int, timeout: float = 2.0) -> str | None:
    """Send a Kafka ApiVersions v0 request; None if the broker answers with error_code 0."""
    correlation_id = 0x5266
    client_id = b"rosterflow-stack"
    request = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", recv_exact(sock, 4))
            body = recv_exact(sock, size)
    except OSError as exc:
        return f"ApiVersions request to {HOST}:{port} failed ({exc})"
    if len(body) < 6:
        return f"ApiVersions answer too short ({len(body)} bytes)"
    got_id, error_code = struct.unpack(">ih", body[:6])
    if got_id != correlation_id:
        return f"ApiVersions answer had correlation id {got_id}, expected {correlation_id}"
    if error_code != 0:
        return f"ApiVersions answered error_code {error_code}"
    return None


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


def kafka_probe(cfg: Config) -> str | None:
    if not port_accepts(cfg.kafka_port):
        return f"port {HOST}:{cfg.kafka_port} does not accept connections"
    return kafka_api_versions(cfg.kafka_port)


def pom_digest() -> str:
    return hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()


def kafka_libs_stamp(cfg: Config) -> Path:
    return cfg.kafka_libs / ".pom.sha256"


def kafka_libs_current(cfg: Config) -> bool:
    try:
        return kafka_libs_stamp(cfg).read_text().strip() == pom_digest()
    except FileNotFoundError:
        return False


def resolve_kafka_libs(cfg: Config) -> None:
    """Copy Kafka's jars into .local/kafka/libs with Maven unless they match the pom already."""
    if kafka_libs_current(cfg):
        return
    mvn = require_command("mvn", "Install Maven (apt-get install -y maven) to fetch Kafka's jars.")
    staging = cfg.kafka_dir / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    say(f"kafka: resolving jars from {KAFKA_POM} with Maven (cached in ~/.m2) ...")
    started = time.monotonic()
    run_checked(
        [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ],
        "Maven jar resolution (is Maven Central reachable? is ~/.m2 writable?)",
    )
    jars = list(staging.glob("*.jar"))
    if not any(jar.name.startswith("kafka_2.13-") for jar in jars):
        raise StackError(f"kafka: Maven finished but {staging} has no kafka_2.13 jar")
    (staging / ".pom.sha256").write_text(pom_digest() + "\n")
    shutil.rmtree(cfg.kafka_libs, ignore_errors=True)
    staging.rename(cfg.kafka_libs)
    say(f"kafka: {len(jars)} jars resolved in {time.monotonic() - started:.1f} s")


def write_kafka_properties(cfg: Config) -> None:
    # Static quorum (controller.quorum.voters) rather than a KIP-853 dynamic quorum
    # formatted with --standalone: the voter endpoint is then read from this file on
    # every start, so changing ROSTERFLOW_LOCAL_KAFKA_PORT works on existing storage.
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cfg.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port},CONTROLLER://{HOST}:{cfg.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{cfg.kafka_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(cfg.kafka_data),
        "num.partitions": "4",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        # A fresh broker creates __consumer_offsets on the first group join;
        # 50 partitions (the default) cost seconds on this machine for nothing.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Deleted test topics go at once, and small segment indexes keep the
        # memory a partition costs low on a broker that hosts thousands.
        "delete.topic.enable": "true",
        "log.index.size.max.bytes": "1048576",
    }
    lines = [
        "# Generated by deploy/local/stack.py on every start; "
        "edit deploy/local/devstack/kafka.py, not this file."
    ]
    lines += [f"{key}={value}" for key, value in properties.items()]
    cfg.kafka_properties.write_text("\n".join(lines) + "\n")


def kafka_java_command(cfg: Config, main_class: str, log_file: str) -> list[str]:
    java = require_command("java", "Install Java 17+ (apt-get install -y openjdk-17-jre-headless).")
    return [
        java,
        # Every test makes its own topics; a few thousand partitions at the
        # end of a full run need more than the 512 MB that once ran out.
        "-Xms256m",
        "-Xmx2g",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={cfg.kafka_logs}",
        f"-Dkafka.log.file={log_file}",
        "-cp",
        f"{cfg.kafka_libs}/*",
        main_class,
    ]


def random_cluster_id() -> str:
    """A Kafka Uuid in its base64 form, avoiding a leading '-' like Kafka's own generator."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def format_kafka_storage_once(cfg: Config) -> None:
    if (cfg.kafka_data / "meta.properties").exists():
        return
    cluster_id = random_cluster_id()
    say(f"kafka: formatting storage in {cfg.kafka_data} (cluster id {cluster_id})")
    cmd = kafka_java_command(cfg, "kafka.tools.StorageTool", "storage-format.log")
    cmd += ["format", "--cluster-id", cluster_id, "--config", str(cfg.kafka_properties)]
    log = cfg.kafka_logs / "storage-format.log"
    run_checked(cmd, "kafka storage format", logs=[log], cwd=cfg.kafka_dir)


def server_log_started_since(log: Path, offset: int) -> bool:
    try:
        size = log.stat().st_size
        with open(log, "rb") as handle:
            handle.seek(offset if offset <= size else 0)
            return b"Kafka Server started" in handle.read()
    except FileNotFoundError:
        return False


def kafka_start(cfg: Config) -> int:
    mkdirs(cfg.kafka_data, cfg.kafka_logs)
    resolve_kafka_libs(cfg)
    write_kafka_properties(cfg)
    format_kafka_storage_once(cfg)
    ensure_port_free(cfg.kafka_port, "kafka")
    ensure_port_free(cfg.controller_port, "kafka controller")
    server_log = cfg.kafka_logs / "server.log"
    offset = server_log.stat().st_size if server_log.exists() else 0
    cmd = [*kafka_java_command(cfg, "kafka.Kafka", "server.log"), str(cfg.kafka_properties)]
    proc = spawn_detached(cmd, cfg.kafka_logs / "kafka.out", cwd=cfg.kafka_dir)
    write_pid(cfg, "kafka", proc.pid)

    def probe() -> str | None:
        missing = kafka_probe(cfg)
        if missing is None and not server_log_started_since(server_log, offset):
            return f"broker answers but {server_log} has no 'Kafka Server started' yet"
        return missing

    logs = [server_log, cfg.kafka_logs / "kafka.out"]
    wait_ready(cfg, "kafka", proc, probe, KAFKA_READY_TIMEOUT_S, logs)
    return proc.pid


def kafka_stop(cfg: Config, pid: int) -> None:
    terminate_pid("kafka", pid)


COMPONENT = Component("kafka", kafka_address, kafka_is_ours, kafka_probe, kafka_start, kafka_stop)
