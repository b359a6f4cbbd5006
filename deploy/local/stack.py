#!/usr/bin/env python3
"""Local development stack for rosterflow: Kafka (KRaft), PostgreSQL, SMTP sink, S3, Prometheus.

    python3 deploy/local/stack.py up|down|status [--only kafka,postgres,smtp,s3,prometheus]

Standard library only (runs with the system python3 before any venv exists);
the SMTP sink itself runs with <repo>/.venv/bin/python (create it with `uv sync`).

Everything lives under <repo>/.local/ (override with ROSTERFLOW_LOCAL_DIR):
    kafka/{libs,data,logs}  postgres/{data,run,log}  mail/  objects/  s3/{bin,data}  logs/
    prometheus/{prometheus.yml,data,rules,targets}
    pids/<name>.pid

Ports (override with env):
    ROSTERFLOW_LOCAL_KAFKA_PORT  19092  (KRaft controller listens on this port + 1)
    ROSTERFLOW_LOCAL_PG_PORT     55432
    ROSTERFLOW_LOCAL_SMTP_PORT   2525
    ROSTERFLOW_LOCAL_S3_PORT     18333  (SeaweedFS; its internal ports take the next nine)
    ROSTERFLOW_LOCAL_PROMETHEUS_PORT  19090  (Debian's prometheus package, installed if missing)

`up` leaves running components alone, `down` only signals pids recorded in the
pid files (after checking /proc/<pid>/cmdline), `status` exits 0 when all
selected components run and answer, 3 otherwise. Any failure exits 1.

The code lives in the devstack package beside this file, one module per role:
config (paths, ports, env overrides), errors, procs (pid files, liveness, stopping,
log tails), component (what the commands need from each component), kafka, postgres,
smtp, s3, prometheus (the components; sigv4 signs the S3 probe) and cli (the commands
and the command line).
"""

from __future__ import annotations

import sys
from pathlib import Path

# deploy/ is not an installed package: make the devstack package beside this file importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
