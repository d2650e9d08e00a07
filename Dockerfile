# syntax=docker/dockerfile:1
# Images of infergate: one Dockerfile, one target per service.
#
#   docker build --target gateway    -t infergate/gateway:0.1.0 .
#   docker build --target autoscaler -t infergate/autoscaler:0.1.0 .
#   docker build --target replica    -t infergate/replica:0.1.0 .
#
# The services are TypeScript run directly by Node's type stripping, so there is
# no compile stage: the runtime stages copy the .ts sources and the production
# dependencies.
#
# The base is pinned to the Node release the repository pins in package.json
# (devDependency "node"). It is pinned by tag, not digest: a digest cannot be
# resolved and checked on the machines this repository is built on, and a
# wrong one would break every build. Pin the digest where images are built
# for production (docker buildx imagetools inspect node:<tag>).
ARG NODE_VERSION=24.21.0

FROM node:${NODE_VERSION}-slim AS base
WORKDIR /app
# Fail fast if the tag ever resolves to another major version than the code
# targets (type stripping without a flag needs Node 23.6 or later).
RUN node -e "const major = Number(process.versions.node.split('.')[0]); if (major !== 24) { console.error('expected Node.js 24, got ' + process.version); process.exit(1); }"

# Production dependencies only. The pinned runtime package "node" is a
# devDependency, so it is left out and the image's own Node 24 runs the code.
# No dependency needs an install script, so none runs.
FROM base AS deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Common runtime: non-root numeric user (the chart's runAsUser), sources shared
# by every service, no npm cache, nothing writable but /tmp.
FROM base AS runtime
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 infergate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin infergate
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY shared/src ./shared/src
USER 10001:10001

# The gateway. loadtest/replica is included because the embedded demo (no
# config file) starts simulated replicas from it.
FROM runtime AS gateway
COPY gateway/src ./gateway/src
COPY loadtest/replica ./loadtest/replica
EXPOSE 8080 9090
# The young generation is fixed at 32 MiB semi-spaces, the size V8 grew it to under the soak
# benchmark's load, so the gateway's memory reaches its working size at start instead of
# stepping up after minutes of traffic. Keep in step with package.json and loadtest/bench.
ENTRYPOINT ["node", "--min-semi-space-size=32", "--max-semi-space-size=32", "gateway/src/main.ts"]

# The autoscaler. It follows the gateway admin Service with the gateway's
# EndpointSlice watcher, hence gateway/src/discovery.
FROM runtime AS autoscaler
COPY autoscaler/src ./autoscaler/src
COPY gateway/src/discovery ./gateway/src/discovery
EXPOSE 6443 9091
ENTRYPOINT ["node", "autoscaler/src/main.ts"]

# The simulated GPU model server, for demos and load tests without GPUs.
FROM runtime AS replica
COPY loadtest/replica ./loadtest/replica
EXPOSE 8000
ENTRYPOINT ["node", "loadtest/replica/main.ts"]
