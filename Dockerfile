# syntax=docker/dockerfile:1
# One image for all three services; each container picks its command:
#   python -m services.<registration|commissions|notifications>.entrypoints.api
#   python -m services.<registration|commissions|notifications>.entrypoints.worker
# Runtime dependencies only: the `dev` extra (embedded broker and database,
# test and lint tools) is never installed here.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: resolve and install the project into a self-contained venv ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# .dockerignore keeps tests, bench, data and VCS metadata out of the context.
COPY . .
# pip byte-compiles what it installs, so the runtime never needs to write .pyc.
RUN pip install --no-cache-dir .

# ---- runtime: the venv, a non-root user, nothing else ----
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="channelkeep" \
      org.opencontainers.image.description="Channelkeep registration, commissions and notifications services" \
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

EXPOSE 8001 8002 8003

# No service is a sensible default: every container names its command.
CMD ["python", "-c", "raise SystemExit('channelkeep: run python -m services.<svc>.entrypoints.api|worker')"]
