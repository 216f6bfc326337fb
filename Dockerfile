# syntax=docker/dockerfile:1
# agentd container image: build on full bookworm, run on bookworm-slim with only
# the shared libraries the binary links against.
#
#   docker build -t agentd .
#   docker run -p 8080:8080 -v agentd-data:/var/lib/agentd agentd
#   docker run -p 8080:8080 -e GEMINI_API_KEY=... agentd      (Gemini backend)

############################ build ############################
FROM debian:bookworm AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make pkg-config libc6-dev \
      libmicrohttpd-dev libcjson-dev libsqlite3-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN make -j"$(nproc)" build VARIANT=release \
 && ./bin/agentd --version

############################ runtime ############################
FROM debian:bookworm-slim AS runtime

# Runtime libraries only; ca-certificates for TLS to the Gemini API.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 libsqlite3-0 libcurl4 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system agentd \
 && useradd --system --gid agentd --home-dir /var/lib/agentd --no-create-home \
      --shell /usr/sbin/nologin agentd \
 && install -d -o agentd -g agentd -m 0750 /var/lib/agentd

COPY --from=build /src/bin/agentd /usr/local/bin/agentd

ENV AGENTD_DATA_DIR=/var/lib/agentd \
    AGENTD_PORT=8080
VOLUME /var/lib/agentd
WORKDIR /var/lib/agentd
USER agentd
EXPOSE 8080

# agentd drains and exits on SIGTERM (Docker's default stop signal); it runs as
# PID 1 through the exec-form ENTRYPOINT, so the signal reaches it directly.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/agentd", "--healthcheck"]

ENTRYPOINT ["/usr/local/bin/agentd"]
CMD ["--port", "8080", "--bind", "0.0.0.0"]
