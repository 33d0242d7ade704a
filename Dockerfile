# Crunch bot image: Node 22, compiled TypeScript, production dependencies only; for CRUNCH_ENGINE=local also
# bubblewrap and the Python stack (Debian packages, the same list .ci/run installs).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY adapters ./adapters
# npm run build also copies the local engine's Python scripts (src/engines/local/python) into dist.
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
# The local engine's sandbox and Python. python-pptx is not packaged in Debian bookworm (see README).
RUN apt-get update && apt-get install -y --no-install-recommends \
      bubblewrap python3 python3-numpy python3-pandas python3-matplotlib python3-scipy python3-sympy \
      python3-statsmodels python3-sklearn python3-seaborn python3-networkx python3-openpyxl python3-xlrd \
      python3-xlsxwriter python3-odf python3-docx python3-pypdf python3-pil python3-bs4 python3-lxml python3-tabulate \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production STORE_URL=sqlite:///data/crunch.sqlite CRUNCH_SESSIONS_DIR=/data/sessions
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3978
# Ready: started, and the store answering (GET /readyz; /healthz only says the process is alive).
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3978)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/cli/main.js", "serve"]
