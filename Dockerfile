# syntax=docker/dockerfile:1
# One small runtime image with the three binaries: producer, consumer and worker.

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, in their own layer: manifests plus empty crates, built once and cached.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY producer/Cargo.toml producer/
COPY consumer/Cargo.toml consumer/
COPY worker/Cargo.toml worker/
COPY shared-models/Cargo.toml shared-models/
COPY system-tests/Cargo.toml system-tests/
COPY workspace-hack/Cargo.toml workspace-hack/build.rs workspace-hack/
RUN for crate in producer consumer worker shared-models system-tests workspace-hack; do \
        mkdir -p $crate/src && echo "" > $crate/src/lib.rs; \
    done \
    && for bin in producer consumer worker; do echo "fn main() {}" > $bin/src/main.rs; done \
    && cargo build --release --bins \
    && rm -rf producer/src consumer/src worker/src shared-models/src system-tests/src workspace-hack/src

# The workspace itself.
COPY . .
RUN touch producer/src/*.rs consumer/src/*.rs worker/src/*.rs shared-models/src/*.rs workspace-hack/src/lib.rs \
    && cargo build --release --bins --locked

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home receipts
COPY --from=build /src/target/release/producer /src/target/release/consumer /src/target/release/worker /usr/local/bin/
USER receipts
# glibc's allocator keeps up to eight arenas a core, one per thread that allocates at once, and memory freed in
# one is not reused by another: two keep each service's memory lower under load (docs/configuration.md).
ENV RUST_LOG=info MALLOC_ARENA_MAX=2
EXPOSE 8000 8001
CMD ["producer"]
