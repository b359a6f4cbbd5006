"""S3: SeaweedFS (Apache-2.0) in its one-process `weed mini` form, built from the Go module proxy.

The binary is built once into .local/s3/bin/weed from the module's source as the Go
module proxy serves it (`go mod download`, then `go build ./weed` in that source as the
main module, since its go.mod has a replace directive that `go install` refuses); Go's
own module and build caches make a rebuild after a fresh clone fast. It serves path-style S3 on
127.0.0.1:<ROSTERFLOW_LOCAL_S3_PORT> with one identity (the stack's fixed development
credentials below) and the bucket `rosterflow`; every other port it opens sits on
127.0.0.1 in a block just above that port. Telemetry, WebDAV, the admin UI and the
table catalogs are off.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from . import sigv4
from .component import Component
from .config import HOST, Config
from .procs import (
    cmdline,
    ensure_port_free,
    mkdirs,
    require_command,
    run_checked,
    say,
    spawn_detached,
    terminate_pid,
    wait_ready,
    write_pid,
)

MODULE = "github.com/seaweedfs/seaweedfs"
# A commit of SeaweedFS as the Go module proxy serves it (it publishes no tagged
# module versions for the v3/v4 releases); change it here to upgrade.
VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
BUCKET = "rosterflow"
# Development-only credentials of the local server (like the local PostgreSQL's
# passwordless role); tests and benchmarks sign their requests with them.
ACCESS_KEY = "rosterflow-local"
SECRET_KEY = "rosterflow-local-secret"
REGION = "us-east-1"
S3_READY_TIMEOUT_S = 90.0


def s3_address(cfg: Config) -> str:
    return f"http://{HOST}:{cfg.s3_port} (bucket {BUCKET}, data {cfg.s3_dir / 'data'})"


def weed_binary(cfg: Config) -> Path:
    return cfg.s3_dir / "bin" / "weed"


def s3_is_ours(cfg: Config, pid: int) -> bool:
    args = cmdline(pid)
    return bool(args) and args[0] == str(weed_binary(cfg)) and "mini" in args


def s3_probe(cfg: Config) -> str | None:
    """None when a signed HEAD of the bucket answers 200 (the server, credentials, bucket)."""
    try:
        status, _ = sigv4.request(
            "HEAD",
            HOST,
            cfg.s3_port,
            f"/{BUCKET}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
        )
    except OSError as exc:
        return f"no S3 answer from {HOST}:{cfg.s3_port} ({exc})"
    if status != 200:
        return f"HEAD /{BUCKET} with the stack's credentials answered HTTP {status}"
    return None


def build_stamp(cfg: Config) -> Path:
    return cfg.s3_dir / "bin" / ".version"


def build_weed(cfg: Config) -> None:
    """Build weed from the Go module proxy's source unless this version is built already."""
    binary = weed_binary(cfg)
    stamp = build_stamp(cfg)
    if binary.exists() and stamp.exists() and stamp.read_text().strip() == VERSION:
        return
    go = require_command("go", "Install Go 1.24+ (the polyglot machine has it in /usr/local/go).")
    env = dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=readonly -buildvcs=false")
    started = time.monotonic()
    say(f"s3: fetching {MODULE}@{VERSION} from the Go module proxy ...")
    download = [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"]
    output = run_checked(download, "go mod download", env=env)
    info = json.loads(output[output.index("{") :])  # after any "go: downloading" lines
    # Built in the module cache's (read-only) copy of the source, as its own main
    # module: the same directory for every clone, so Go's build cache serves them all.
    say("s3: building weed (first time: many minutes on 2 cores; cached by Go after) ...")
    mkdirs(binary.parent)
    partial = binary.with_name("weed.partial")
    run_checked(
        [go, "build", "-o", str(partial), "./weed"], "go build weed", cwd=Path(info["Dir"]), env=env
    )
    partial.rename(binary)
    stamp.write_text(VERSION + "\n")
    say(f"s3: weed built in {time.monotonic() - started:.1f} s")


def write_identities(cfg: Config) -> Path:
    config = {
        "identities": [
            {
                "name": "rosterflow",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path = cfg.s3_dir / "s3.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def ports(cfg: Config) -> dict[str, int]:
    """Every port weed mini opens, all given explicitly (it then fails rather than moving)."""
    base = cfg.s3_port
    return {
        "s3.port": base,
        "s3.port.grpc": base + 1,
        "master.port": base + 2,
        "master.port.grpc": base + 3,
        "volume.port": base + 4,
        "volume.port.grpc": base + 5,
        "filer.port": base + 6,
        "filer.port.grpc": base + 7,
        "admin.port": base + 8,
        "admin.port.grpc": base + 9,
    }


def s3_start(cfg: Config) -> int:
    build_weed(cfg)
    data = cfg.s3_dir / "data"
    mkdirs(data, cfg.s3_log.parent)
    for name, port in ports(cfg).items():
        ensure_port_free(port, f"s3 ({name})")
    cmd = [
        str(weed_binary(cfg)),
        "mini",
        f"-dir={data}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.config={write_identities(cfg)}",
        f"-bucket={BUCKET}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-admin.port.legacy=0",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.iam=false",
        "-master.volumeSizeLimitMB=64",
        *(f"-{name}={port}" for name, port in ports(cfg).items()),
    ]
    proc = spawn_detached(cmd, cfg.s3_log, cwd=cfg.s3_dir)
    write_pid(cfg, "s3", proc.pid)
    wait_ready(cfg, "s3", proc, lambda: s3_probe(cfg), S3_READY_TIMEOUT_S, [cfg.s3_log])
    return proc.pid


def s3_stop(cfg: Config, pid: int) -> None:
    terminate_pid("s3", pid)


COMPONENT = Component("s3", s3_address, s3_is_ours, s3_probe, s3_start, s3_stop)
