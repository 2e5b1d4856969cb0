# syntax=docker/dockerfile:1
#
# AgentOS: one image for every role (orchestrator, worker, reviewer), the
# migration Job and `helm test` (charts/agentos).
#
#   docker build -t agentos:0.1.0 .
#   docker build --build-arg INSTALL_BROWSER=true -t agentos:0.1.0-browser .
#
# The base image is pinned to a patch release. For byte-for-byte reproducible
# builds also pin its digest (the multi-arch index digest printed by
# `docker buildx imagetools inspect python:3.11.13-slim-bookworm`):
#   docker build --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------------------
# build: install the package and its dependencies into a virtualenv.
FROM ${PYTHON_IMAGE} AS build

# true: add the `browser` extra (Playwright's Python package only; the browser
# itself is Debian's chromium in the runtime stage, never `playwright install`).
ARG INSTALL_BROWSER=false

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/agentos

WORKDIR /src
COPY pyproject.toml README.md ./
COPY kernel/ kernel/
COPY agents/ agents/
COPY tools/ tools/
COPY sql/ sql/
COPY cli/ cli/
COPY tui/ tui/

RUN set -eu; \
    extra=""; \
    if [ "$INSTALL_BROWSER" = "true" ]; then extra="[browser]"; fi; \
    /opt/agentos/bin/pip install ".${extra}"; \
    /opt/agentos/bin/agentos --help > /dev/null

# ---------------------------------------------------------------------------
# runtime: the virtualenv, git for the agents' worktrees, psql for
# `agentos db psql`, and (optionally) chromium for the browser tool.
FROM ${PYTHON_IMAGE} AS runtime

ARG INSTALL_BROWSER=false

LABEL org.opencontainers.image.title="agentos" \
      org.opencontainers.image.description="A kernel for teams of AI agents whose whole state lives in PostgreSQL" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN set -eu; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        ca-certificates \
        git \
        openssh-client \
        postgresql-client; \
    if [ "$INSTALL_BROWSER" = "true" ]; then \
        apt-get install -y --no-install-recommends chromium fonts-liberation; \
    fi; \
    rm -rf /var/lib/apt/lists/*

# A fixed, numeric, non-root uid/gid: Kubernetes' runAsNonRoot can verify it,
# and the chart's runAsUser/fsGroup (10001) match it.
RUN set -eu; \
    groupadd --system --gid 10001 agentos; \
    useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/agentos --shell /usr/sbin/nologin agentos; \
    install -d -o 10001 -g 10001 -m 0750 /var/lib/agentos /var/lib/agentos/workspace

COPY --from=build /opt/agentos /opt/agentos

ENV PATH=/opt/agentos/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/agentos \
    AGENTOS_HOME=/var/lib/agentos \
    AGENTOS_WORKSPACE=/var/lib/agentos/workspace \
    AGENTOS_HEALTH_PORT=8080 \
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    AGENTOS_BROWSER_EXECUTABLE=/usr/bin/chromium

WORKDIR /var/lib/agentos
USER 10001:10001

# HTTP health of `agentos agent run`: GET /livez and /readyz.
EXPOSE 8080

ENTRYPOINT ["agentos"]
CMD ["--help"]
