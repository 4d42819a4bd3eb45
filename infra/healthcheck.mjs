// The container HEALTHCHECK (infra/Dockerfile): exits 0 when this container's node answers
// GET /readyz with 200, 1 otherwise. The port is RINGKV_HTTP_PORT (default 8080), the one the
// node was started with (`--http-port`). Node's own fetch, since slim images have no curl or wget.
const port = Number(process.env.RINGKV_HTTP_PORT ?? 8080);
const timeoutMs = 2000;
try {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
  process.stdout.write(`readyz ${res.status}: ${(await res.text()).trim()}\n`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  process.stdout.write(`readyz on port ${port} did not answer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
