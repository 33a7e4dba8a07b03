// srq-hpn sample web front end: a plain Node HTTP server (no dependencies).
// GET / serves a page that asks the api for its status with a relative fetch of
// /api/health (the reverse proxy routes /api/* to the api). Other paths: 404.
"use strict";

const http = require("node:http");

const HOST = process.env.HOST || "0.0.0.0";
const PORT = Number.parseInt(process.env.PORT || "3000", 10);
const APP_NAME = process.env.APP_NAME || "srq-hpn";

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  }[c]));
}

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>srq-hpn</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; padding: 0 1rem; }
  .ok { color: #146c2e; } .bad { color: #b3261e; }
</style>
</head>
<body>
<h1 id="app-name">${escapeHtml(APP_NAME)}</h1>
<p>API status: <span id="api-status">checking&hellip;</span></p>
<script>
  (async () => {
    const el = document.getElementById("api-status");
    try {
      const res = await fetch("/api/health", { headers: { accept: "application/json" } });
      const body = await res.json();
      el.textContent = res.ok && body.ok ? "ok (" + body.service + ")" : "error (HTTP " + res.status + ")";
      el.className = res.ok && body.ok ? "ok" : "bad";
    } catch (err) {
      el.textContent = "unreachable";
      el.className = "bad";
    }
  })();
</script>
</body>
</html>
`;

let closing = false;

const server = http.createServer((req, res) => {
  // While shutting down, each answer closes its connection: the proxy opens a new one
  // (to the new version) for the next request, and this process can exit at once.
  if (closing) res.setHeader("connection", "close");
  const path = (req.url || "/").split("?")[0];
  if ((req.method === "GET" || req.method === "HEAD") && path === "/") {
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": Buffer.byteLength(page),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : page);
    return;
  }
  if (path === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ok: true, service: "web" }));
    return;
  }
  res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
  res.end("not found\n");
});

server.listen(PORT, HOST, () => {
  console.log(`srq-hpn web listening on http://${HOST}:${PORT}`);
});

// Graceful stop: refuse new connections, let requests in flight finish, close idle
// keep-alive connections, and exit (at the latest after 10 s).
function shutdown(signal) {
  console.log(`received ${signal}, closing`);
  closing = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
}

process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
