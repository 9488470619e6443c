# syntax=docker/dockerfile:1
# The `watchbot-watcher` image: the watcher container of a watchbot stack (one per `watchers`). It reads only the
# environment variables the template's watcher task definition sets (Cluster, TaskDefinition, ContainerName,
# Concurrency, QueueUrl, NotificationTopic, StackName, ...) and runs one ECS task per queued message.
#
#   docker build -t watchbot-watcher .
#
# Kept deliberately plain: there is no Docker engine on the machines this project is developed on, so this file is
# not built by the test suite. Two stages: a Rust builder, and a distroless runtime with glibc, CA certificates
# (the AWS clients use rustls with the system roots) and a non-root user, nothing else (no shell, no package manager).
#
# Worker images are the user's own. One whose environment holds `secure:` (KMS-encrypted) values copies the
# `watchbot` binary in (`cargo build --release -p watchbot-cli --bin watchbot`) and starts through it, so the values
# are decrypted and the worker exec'd in the same process, without a shell (README, "Secrets"):
#
#   ENTRYPOINT ["/usr/local/bin/watchbot", "decrypt-env", "--"]
#   CMD ["./worker.sh"]

FROM rust:1.95-slim-bookworm AS build
# aws-lc-rs (rustls' crypto) and bundled SQLite compile C; cmake is needed by aws-lc on some targets.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace: `-p` selects the package, but Cargo needs every member's manifest to resolve the workspace.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates ./crates
COPY xtask ./xtask
# watchbot-cli's manifest names its test target in tests/, and Cargo checks target paths when it loads the workspace.
COPY tests ./tests
# Cache mounts (BuildKit) keep the registry and the target folder between builds; the binary is copied out of the
# cached target folder because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p watchbot-watcher --bin watchbot-watcher \
    && cp target/release/watchbot-watcher /usr/local/bin/watchbot-watcher

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/watchbot-watcher /usr/local/bin/watchbot-watcher
# distroless's `nonroot` user (uid 65532); the watcher needs no file system access beyond its binary.
USER nonroot:nonroot
# SIGTERM (ECS stopping the service's task) makes the watcher stop receiving, stop its tasks and return unfinished
# messages to the queue before it exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/watchbot-watcher"]
