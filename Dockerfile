# syntax=docker/dockerfile:1
# One image for the five services and the demo-data job; each runs its own module:
#   python -m services.ingest | services.validator | services.importer
#   python -m services.archiver | services.notifier | rosterflow.demo_data
# Built from uv.lock with uv (the version the Makefile pins), without dev dependencies,
# the project installed as a wheel (no source tree in the image), run as a non-root user.
#
#   docker build -t rosterflow:local .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.11
COPY libs ./libs
COPY services ./services
RUN uv sync --frozen --no-dev --no-editable --python /usr/local/bin/python3.11

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 rosterflow \
 && useradd --system --uid 10001 --gid rosterflow --no-create-home --shell /usr/sbin/nologin rosterflow
COPY --from=build --chown=root:root /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROSTERFLOW_HTTP_HOST=0.0.0.0 \
    ROSTERFLOW_OPS_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
# ingest's API (and its /health, /ready, /metrics); the other services' ops port.
EXPOSE 8080 9100
CMD ["python", "-m", "services.ingest"]
