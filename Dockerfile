# syntax=docker/dockerfile:1
#
# One Dockerfile, one image per mp3mesh service, chosen by build target:
#
#   docker build --target auth      -t mp3mesh/auth:dev .
#   docker build --target gateway   -t mp3mesh/gateway:dev .
#   docker build --target converter -t mp3mesh/converter:dev .
#   docker build --target notifier  -t mp3mesh/notifier:dev .
#
# `make images` builds all four (mk/images.mk), with Docker or inside Minikube.
# The four images share every layer but the last, so they cost one image's disk space.
#
# Base image, pinned by digest: python:3.11-slim-bookworm as resolved in a public project's
# build log (2026-09-05, CPython 3.11.16), found through code search. To move to a newer
# patch release: `docker buildx imagetools inspect python:3.11-slim-bookworm` and paste the
# index digest here (or override with --build-arg PYTHON_IMAGE=...).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:528257d48c1da0dcecc2e725d1ae34498d60c965f1241e39cd6a85a8859bdf84

# ---------------------------------------------------------------------------------------------
# build: a virtualenv with the locked dependencies, then the project itself (no deps).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so editing the source does not reinstall them: the runtime dependencies
# of pyproject.toml (not the dev tools), at the exact versions of the one lock file.
COPY requirements.lock pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/runtime.txt \
 && pip install -c requirements.lock -r /tmp/runtime.txt
# Everything .dockerignore lets through: the packages, gen/, meshkit/, observability/, pyproject.
COPY . .
# pip compiles the .pyc files at install time: the runtime's read-only filesystem needs none.
RUN pip install --no-deps . \
 && cd / \
 && python -c "import importlib.util as u, sys; m = [n for n in ('auth_svc', 'gateway_svc', 'converter_svc', 'notifier_svc', 'meshkit', 'observability', 'mp3mesh') if u.find_spec(n) is None]; sys.exit('not installed by pip install .: %s' % m if m else 0)"

# ---------------------------------------------------------------------------------------------
# runtime: the same Python, the virtualenv, LAME from Debian, a non-root user, no compilers.
FROM ${PYTHON_IMAGE} AS runtime
# libmp3lame0: a faster LAME than the one inside PyAV's wheel, for the converter when it uses it.
# tini: PID 1 that forwards SIGTERM to Python and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmp3lame0 tini \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 mp3mesh \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin mp3mesh \
 && mkdir -p /app
COPY --from=build /opt/venv /opt/venv
# Read-only root filesystem friendly: nothing is written outside /tmp (an emptyDir in
# Kubernetes), not even bytecode.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /app
USER 10001:10001
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------------
# One target per service: only the entrypoint and the documented ports differ.
FROM runtime AS auth
EXPOSE 50051
ENTRYPOINT ["tini", "--", "python", "-m", "auth_svc"]

FROM runtime AS converter
EXPOSE 50052
ENTRYPOINT ["tini", "--", "python", "-m", "converter_svc"]

FROM runtime AS notifier
EXPOSE 50053
ENTRYPOINT ["tini", "--", "python", "-m", "notifier_svc"]

FROM runtime AS gateway
EXPOSE 50050 8080
ENTRYPOINT ["tini", "--", "python", "-m", "gateway_svc"]
