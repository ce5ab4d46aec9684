# syntax=docker/dockerfile:1
# IdentSphere: a release build on Debian 12 (bookworm), run on distroless cc-debian12 (glibc + libgcc, no shell,
# no package manager) as the unprivileged user 65532.
#
#   docker build -t identsphere:0.1.0 .
#   docker run --rm -p 8080:8080 identsphere:0.1.0          # embedded store in /var/lib/identsphere (single node)
#
# In Kubernetes (helm/identsphere) the image runs on Postgres + Redis only. The build needs the BuildKit cache
# mounts below (Docker 23+ or buildx); RUST_VERSION must be at least the crate's rust-version (1.89).
# checkov:skip=CKV_DOCKER_2:No HEALTHCHECK: the image has no shell or HTTP client; Kubernetes probes /healthz and /readyz

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build
COPY . .
# aws-lc-rs compiles AWS-LC and rusqlite bundles SQLite: both need only the C toolchain the image ships.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/build/target,sharing=locked \
    cargo build --release --locked -p identsphere \
    && install -D -m 0755 target/release/identsphere /out/usr/local/bin/identsphere \
    && install -d -m 0700 /out/var/lib/identsphere

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/usr/local/bin/identsphere /usr/local/bin/identsphere
# The parent is copied so that the data directory keeps its 0700 mode; the server would set it anyway.
COPY --from=builder --chown=65532:65532 /out/var/lib/ /var/lib/
# Container defaults; every one of them can be overridden (the Helm chart sets its own).
ENV IDENTSPHERE_BIND=0.0.0.0:8080 \
    IDENTSPHERE_LOG_FORMAT=json \
    IDENTSPHERE_DATA_DIR=/var/lib/identsphere
WORKDIR /var/lib/identsphere
USER 65532:65532
EXPOSE 8080
# SIGTERM (the default stop signal): /readyz fails, serving goes on for IDENTSPHERE_SHUTDOWN_DELAY seconds, then
# in-flight requests get IDENTSPHERE_SHUTDOWN_TIMEOUT seconds to finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/identsphere"]
CMD ["serve"]
