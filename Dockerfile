# wsgate's container image: `docker build -t wsgate .`
#
# The image runs JavaScript compiled from the sources (npm run build: tsconfig.build.json), not the sources
# themselves. Node.js 24 could run the TypeScript directly (erasable syntax only), but loading its type stripper
# costs every process about 30 MB of resident memory, 27 MB of it private: an idle sidecar or data-plane worker
# went from 104 MB to 76 MB (docs/benchmarks.md). The compiled code is the sources with their types erased and
# nothing else (no bundling, no downlevelling; source maps kept), and the tests run it too
# (test/observability/dockerfile.test.ts builds this Dockerfile without Docker and runs the result). An image is only
# built from sources that pass the type check. It holds dist/, bin/ and the production dependencies only.
#
# Signals: wsgate is PID 1 and needs no init. As PID 1, Node gets only the signals it has handlers for, and wsgate
# handles SIGTERM and SIGINT itself (drain, then exit; a second signal closes every tunnel). Its only child
# processes are its --workers, which Node reaps. Distroless has no tini; `docker run --init` adds one if wanted.

# ---- build: type-check, build the native relay, then keep only the production dependencies ------------------------
# The full bookworm image (not -slim): node-gyp needs python3, make and a C compiler for the native relay.
FROM node:24-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# --ignore-scripts: the only install script is the `node` devDependency's (a Node.js binary for npm scripts), which
# this image does not need: it has Node.js 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY bin ./bin
COPY src ./src
# examples/ only for the type check: the quickstart (`npm start`, src/cli/quickstart.ts) imports its demo backend.
COPY examples ./examples
RUN npx tsc --noEmit
RUN npx tsc -p tsconfig.build.json
# The native relay of L4 tunnels (issue 13): built against this image's Node.js headers, offline. Required here: an
# image must not quietly fall back to the JavaScript relay (a checkout's npm ci only warns).
COPY native ./native
RUN sh native/build.sh --require
# Prune: a fresh install of the production dependencies only (npm ci removes node_modules first).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: Node.js 24 and nothing else (no shell, no package manager), as a non-root user ---------------------
FROM gcr.io/distroless/nodejs24-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="wsgate" \
      org.opencontainers.image.description="Kubernetes ingress controller and proxy for WebSockets and other long-lived connections" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
# The addon alone (dist/proxy/native-relay.js loads ../../native/build/Release/wsgate_relay.node). Distroless has the
# same glibc as bookworm, which built it.
COPY --from=build /app/native/build/Release/wsgate_relay.node ./native/build/Release/wsgate_relay.node
# Numeric, so that Kubernetes' runAsNonRoot can verify it (distroless's nonroot user is 65532).
USER 65532:65532
# HTTP, HTTPS, admin (/metrics, /healthz, /readyz).
EXPOSE 8080 8443 9090
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=2", "/app/bin/wsgate.js"]
CMD ["controller"]
