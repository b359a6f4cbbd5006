"""The image's Python environment, built here the way the Dockerfile builds it.

No Docker engine runs here, so this builds what the Dockerfile's build stage
builds — `uv sync --frozen --no-dev --no-editable` from the lock file, into a
fresh environment, from a copy of only what .dockerignore lets in — and checks
that every entry point the compose file and the Kubernetes manifests run imports
there, with the migrations packaged and no development tool installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from rosterflow.settings import REPO_ROOT

UV = REPO_ROOT / ".local" / "tools" / "bin" / "uv"


def entry_modules() -> set[str]:
    compose = yaml.safe_load((REPO_ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    modules = {
        spec["command"][2]
        for spec in compose["services"].values()
        if spec.get("image", "").startswith("rosterflow")
    }
    for path in (REPO_ROOT / "deploy" / "k8s" / "base").glob("*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "Deployment":
                for container in document["spec"]["template"]["spec"]["containers"]:
                    modules.add(container["command"][2])
    return modules


def test_the_images_environment_runs_every_entry_point(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    # Everything is ignored ("*") but the "!" exceptions.
    assert "*" in lines
    allowed = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    for name in allowed:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [str(UV), "sync", "--frozen", "--no-dev", "--no-editable", "--python", "python3.11", "-q"],
        cwd=context,
        env=env,
        check=True,
    )
    modules = entry_modules()
    assert {f"services.{n}" for n in ("ingest", "validator", "importer", "archiver")} <= modules
    # What `python -m <module>` runs: a package's __main__, or the module itself.
    probe = (
        "import importlib, importlib.util\n"
        f"for name in {sorted(modules)!r}:\n"
        "    spec = importlib.util.find_spec(name)\n"
        "    main = name + '.__main__' if spec.submodule_search_locations else name\n"
        "    module = importlib.import_module(main)\n"
        "    assert 'site-packages' in module.__file__, module.__file__\n"
        "from rosterflow import db\n"
        "print(len(db.migrations()))\n"
        "print(*(importlib.util.find_spec(dev) is None for dev in ('pytest', 'ruff', 'mypy')))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,  # not the repository: only what is installed may be imported
        capture_output=True,
        text=True,
        check=True,
    )
    migrations, no_dev = result.stdout.split("\n")[:2]
    assert int(migrations) == len(list((REPO_ROOT / "libs/rosterflow/migrations").glob("*.sql")))
    assert no_dev == "True True True"
