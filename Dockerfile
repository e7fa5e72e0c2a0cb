# The quoteflow pipeline image: the `quoteflow` command and its runtime
# dependencies, nothing else. docker-compose.yml runs every pipeline service from
# it: the one-shot `topics` and `schemas`, `cdc`, `process`, `sink`, `esp-sandbox`,
# and the optional `smoke` and `demo`.
#
#   docker build -t quoteflow:local .
#   docker run --rm quoteflow:local --help
#
# One stage is enough: every dependency installs from a wheel (confluent-kafka
# bundles librdkafka, psycopg[binary] bundles libpq, rocksdict bundles RocksDB),
# so there is no compiler to leave behind. The source is bind-mounted for the
# install instead of copied, so it never becomes a layer of the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Runtime dependencies only (no dev extras). The source mount is read-write because
# setuptools writes build/ and *.egg-info into the tree; those writes are discarded
# with the mount. pip's cache is a cache mount: rebuilds after a source change do
# not download every wheel again, and the cache is not part of the image.
RUN --mount=type=bind,source=.,target=/src,rw \
    --mount=type=cache,target=/root/.cache/pip \
    pip install /src

# A fixed unprivileged uid, so a bind-mounted state directory can be chowned to it.
# /var/lib/quoteflow is stack.home (QUOTEFLOW_STACK__HOME): faust's RocksDB tables
# live under it, so docker-compose.yml mounts a volume there; a new named volume
# takes this directory's owner.
RUN groupadd --system --gid 10001 quoteflow \
    && useradd --system --uid 10001 --gid quoteflow --create-home \
        --home-dir /home/quoteflow --shell /usr/sbin/nologin quoteflow \
    && install -d -o quoteflow -g quoteflow -m 0750 /var/lib/quoteflow

ENV QUOTEFLOW_STACK__HOME=/var/lib/quoteflow

USER quoteflow:quoteflow
# quoteflow.settings reads ./quoteflow.toml when present: mount one here, or set QUOTEFLOW_CONFIG.
WORKDIR /home/quoteflow

ENTRYPOINT ["quoteflow"]
CMD ["--help"]
