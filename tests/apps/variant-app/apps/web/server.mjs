// Harbor notes web: one page carrying the build's SITE_LABEL, and /healthz.
import http from "node:http";

const label = process.env.SITE_LABEL || "harbor";
const page = `<!doctype html><title>${label.replace(/[<&>"]/g, "")}</title><h1 id="site">${label.replace(/[<&>"]/g, "")}</h1>`;

let closing = false;

const server = http.createServer((req, res) => {
  if (closing) res.setHeader("connection", "close");
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    return res.end('{"ok":true,"service":"web"}');
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(page);
});
server.listen(3000, "0.0.0.0", () => console.log(`harbor web (${label}) on :3000`));
process.on("SIGTERM", () => {
  closing = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
