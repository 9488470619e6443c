# The `watchbot-watcher` image: the watcher container of a watchbot stack (one per `watchers`). It reads only the
# environment variables the template's watcher task definition sets (Cluster, TaskDefinition, ContainerName,
# Concurrency, QueueUrl, NotificationTopic, StackName, ...) and runs one ECS task per queued message.
# The template's watcher task definition runs `<account>.dkr.ecr.<region>.<suffix>/watchbot:v<version>`.
#
# Two ways to build it from this one file (README, "The watcher image"):
#
# - With a registry (BuildKit, the default target): a Rust builder stage compiles the watcher, and a distroless
#   runtime with glibc, CA certificates and a non-root user receives it (no shell, no package manager):
#
#       docker build -t watchbot:v0.1.0 .
#
#   The base images are build arguments (RUST_IMAGE, RUNTIME_IMAGE), e.g. to take them from a mirror.
#
# - Without a registry (`cargo xtask image`): nothing is pulled. xtask builds the watcher on the host and assembles
#   a small build context whose `rootfs/` holds the binary, the shared libraries `ldd` names, the host's CA
#   certificates and a passwd/group naming the non-root user; the `rootfs` target lays it on `scratch`:
#
#       docker build --target rootfs -t watchbot:v0.1.0 target/image/context
#
#   That target comes first so that the classic builder (a Docker CLI without buildx) stops there and never reaches
#   the stages below, which need the registry; BuildKit skips whatever the chosen target does not use.
#
# Both images: user 65532 (distroless's `nonroot`), the watcher as the entrypoint, SIGTERM drains (the watcher
# stops receiving, returns unfinished messages to the queue, leaves running ECS tasks for the next watcher to adopt,
# and exits 0 within ECS's 30 s stop timeout). No `# syntax=` line: it would make BuildKit pull its frontend image;
# the built-in frontend has everything used here.
#
# Worker images are the user's own. One whose environment holds `secure:` (KMS-encrypted) values copies the
# `watchbot` binary in (`cargo build --release -p watchbot-cli --bin watchbot`) and starts through it, so the values
# are decrypted and the worker exec'd in the same process, without a shell (README, "Secrets"):
#
#   ENTRYPOINT ["/usr/local/bin/watchbot", "decrypt-env", "--"]
#   CMD ["./worker.sh"]

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# ---- Without a registry: the host-built runtime file system (assembled by `cargo xtask image`). ----
FROM scratch AS rootfs
COPY rootfs/ /
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/watchbot-watcher"]

# ---- With a registry: compile in a Rust image, run on distroless. ----
FROM ${RUST_IMAGE} AS build
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

FROM ${RUNTIME_IMAGE} AS registry
COPY --from=build /usr/local/bin/watchbot-watcher /usr/local/bin/watchbot-watcher
# distroless's `nonroot` user; the watcher needs no file system access beyond its binary.
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/watchbot-watcher"]
