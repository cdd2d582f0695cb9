# wsgate runs its TypeScript sources directly on Node.js 24 (type stripping): the image holds the sources and the
# production dependencies only. (The chart issue refines this image: distroless runtime, signal handling, labels.)
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install script is the `node` devDependency's, which production does not install.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
LABEL org.opencontainers.image.title="wsgate" \
      org.opencontainers.image.description="Ingress proxy for WebSockets and other long-lived connections" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
USER node
EXPOSE 8080 8443 9090
ENTRYPOINT ["node", "bin/wsgate.js"]
CMD ["serve", "--config", "/etc/wsgate"]
