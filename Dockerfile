# agentd container image: build on full bookworm, run on bookworm-slim with only
# the shared libraries the binary links against. Stock Dockerfile syntax only
# (no syntax directive), so an offline or mirrored build needs no frontend image.
#
#   docker build -t agentd .
#   docker run -p 8080:8080 -v agentd-data:/var/lib/agentd agentd
#   docker run -p 8080:8080 -e GEMINI_API_KEY=... agentd      (Gemini backend)
#
# Configure it with environment variables (-e AGENTD_PORT=9000), not flags: the
# HEALTHCHECK runs `agentd --healthcheck`, which reads the same environment, so
# a flag given to `docker run` would move the server but not its health check.

############################ build ############################
FROM debian:bookworm AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make pkg-config libc6-dev binutils \
      libmicrohttpd-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev \
      libstemmer-dev libutf8proc-dev libssl-dev libpq-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# The runtime stage gets the binary stripped (no debug symbols in the image).
RUN make -j"$(nproc)" build VARIANT=release \
 && strip --strip-unneeded -o /src/agentd bin/agentd \
 && /src/agentd --version

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

# Runtime libraries only; ca-certificates for TLS to the Gemini API. The
# downloaded packages go too, on base images that do not clean them up.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libsqlite3-0 libpq5 libcurl4 libstemmer0d libutf8proc2 libssl3 \
      ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid (10001:10001), so that a bind-mounted data dir can be given
# to it: `chown 10001:10001 /srv/agentd`. With `--user UID:GID`, the data dir
# must be writable by that uid instead.
RUN groupadd --system --gid 10001 agentd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/agentd --no-create-home \
      --shell /usr/sbin/nologin agentd \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/agentd

COPY --from=build /src/agentd /usr/local/bin/agentd

# The one source of the configuration: the server and its health check both
# read it. The drain deadline (5 s by default) ends well inside `docker stop`'s
# 10 s grace; raise AGENTD_SHUTDOWN_TIMEOUT_MS only with `--stop-timeout`.
ENV AGENTD_DATA_DIR=/var/lib/agentd \
    AGENTD_PORT=8080 \
    AGENTD_BIND=0.0.0.0
VOLUME /var/lib/agentd
WORKDIR /var/lib/agentd
USER 10001:10001
EXPOSE 8080

# agentd drains and exits 0 on SIGTERM; it runs as PID 1 through the exec-form
# ENTRYPOINT, so the signal reaches it directly.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/agentd", "--healthcheck"]

ENTRYPOINT ["/usr/local/bin/agentd"]
