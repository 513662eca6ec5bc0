# syntax=docker/dockerfile:1
# One image for every process; each container picks its command:
#   python -m services.<registration|commissions|notifications>.entrypoints.api
#   python -m services.<registration|commissions|notifications>.entrypoints.worker
#   python -m services.portal.entrypoints.api
# Runtime dependencies only, from requirements/runtime.lock with their hashes; the
# dev lock (embedded broker and database, test and lint tools), devkit/ and tests/
# never go in. tests/e2e/test_wheel_install.py does this install step without docker
# and starts every entry point from it.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: the locked dependencies, then our wheel, into a self-contained venv ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
# --no-deps: nothing is resolved at build time; --require-hashes: nothing but the
# files the lock names (and pip-audit checked) is installed.
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --no-cache-dir --no-deps --require-hashes -r requirements/runtime.lock

# .dockerignore keeps tests, devkit, bench, data and VCS metadata out of the context.
COPY . .
# The wheel holds shared/, chassis/ and services/ with their templates, schemas and
# static files (pyproject's package-data); pip byte-compiles what it installs, so the
# runtime never needs to write .pyc.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && pip install --no-cache-dir --no-deps /tmp/wheels/channelkeep-*.whl

# ---- runtime: the venv, a non-root user, nothing else ----
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="channelkeep" \
      org.opencontainers.image.description="Channelkeep registration, commissions and notifications services and the partner portal" \
      org.opencontainers.image.licenses="Apache-2.0"

# Fixed uid/gid so Kubernetes can assert runAsUser: 10001 / runAsNonRoot.
RUN groupadd --system --gid 10001 channelkeep \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /app --shell /usr/sbin/nologin channelkeep \
    && mkdir -p /app \
    && chown 10001:10001 /app

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0

# The code lives in /opt/venv; /app is only the working directory, where a
# stream worker may keep local state (mount a volume or emptyDir there when the
# root filesystem is read-only).
WORKDIR /app
USER 10001

# registration, commissions, notifications, portal
EXPOSE 8001 8002 8003 8004

# No service is a sensible default: every container names its command.
CMD ["python", "-c", "raise SystemExit('channelkeep: run python -m services.<svc>.entrypoints.api|worker')"]
