/**
 * Test support: headless Chromium driven over the DevTools protocol (CDP), with `ws` as the
 * WebSocket client. Debian's /usr/bin/chromium where installed (.ci/run installs it); tests that
 * need it skip, saying why, where it is missing (`chromiumPath` undefined).
 *
 * `openPage(url)` starts a fresh browser (its own temporary profile, a free debugging port that the
 * browser reports on stderr), connects to its page target and navigates; the page handle evaluates
 * expressions in the page, waits for conditions, and takes screenshots. `close()` ends the browser.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';

export const chromiumPath: string | undefined =
  ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? (spawnSync('which', ['chromium']).stdout?.toString().trim() || undefined);

/** How long the browser may take to start and report its debugging address. */
const launchTimeoutMs = 20_000;
/** How long one CDP command may take. */
const commandTimeoutMs = 15_000;

export interface Page {
  /** Evaluates an expression in the page (promises awaited) and returns its value as JSON. */
  evaluate<T>(expression: string): Promise<T>;
  /** Polls `expression` until it is truthy; fails after timeoutMs, naming `what`. */
  waitFor(what: string, expression: string, timeoutMs: number): Promise<void>;
  /** A PNG of the viewport at the given size. */
  screenshot(file: string, size: { width: number; height: number }): Promise<Buffer>;
  navigations(): number;
  close(): Promise<void>;
}

export async function openPage(url: string, size = { width: 1400, height: 1100 }): Promise<Page> {
  if (!chromiumPath) throw new Error('no chromium installed');
  const profile = mkdtempSync(path.join(os.tmpdir(), 'ringkv-chromium-'));
  const child: ChildProcess = spawn(
    chromiumPath,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--hide-scrollbars', '--no-first-run', '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${size.width},${size.height}`, 'about:blank'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`chromium did not report a debugging port within ${launchTimeoutMs} ms:\n${err}`)), launchTimeoutMs);
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        err += chunk;
        const m = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(err);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      void exited.then(() => reject(new Error(`chromium exited:\n${err}`)));
    });
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
    const target = targets.find((t) => t.type === 'page');
    if (!target) throw new Error('chromium has no page target');
    const page = await connectPage(target.webSocketDebuggerUrl, stop);
    await page.goto(url, size);
    return page;
  } catch (err) {
    await stop();
    throw err;
  }
}

async function connectPage(wsUrl: string, stop: () => Promise<void>): Promise<Page & { goto(url: string, size: { width: number; height: number }): Promise<void> }> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let seq = 0;
  let navigations = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<string, ((params: unknown) => void)[]>();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: unknown };
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    } else if (msg.method) {
      if (msg.method === 'Page.frameNavigated') navigations++;
      for (const l of listeners.get(msg.method) ?? []) l(msg.params);
    }
  });
  const send = <T>(method: string, params: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++seq;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`CDP ${method} had no answer within ${commandTimeoutMs} ms`));
      }, commandTimeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const once = (method: string) =>
    new Promise<void>((resolve) => {
      const list = listeners.get(method) ?? [];
      const l = () => {
        listeners.set(method, (listeners.get(method) ?? []).filter((x) => x !== l));
        resolve();
      };
      list.push(l);
      listeners.set(method, list);
    });

  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = await send<{ result: { value?: unknown }; exceptionDetails?: { text: string; exception?: { description?: string } } }>('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  };

  return {
    async goto(url, size) {
      await send('Page.enable');
      await send('Runtime.enable');
      await send('Emulation.setDeviceMetricsOverride', { width: size.width, height: size.height, deviceScaleFactor: 1, mobile: false });
      navigations = 0;
      const loaded = once('Page.loadEventFired');
      await send('Page.navigate', { url });
      await loaded;
    },
    evaluate,
    async waitFor(what, expression, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      while (Date.now() < deadline) {
        try {
          if (await evaluate<boolean>(`Boolean(${expression})`)) return;
        } catch (err) {
          last = err;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting in the page for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    },
    async screenshot(file, size) {
      await send('Emulation.setDeviceMetricsOverride', { width: size.width, height: size.height, deviceScaleFactor: 1, mobile: false });
      const r = await send<{ data: string }>('Page.captureScreenshot', { format: 'png', clip: { x: 0, y: 0, width: size.width, height: size.height, scale: 1 }, captureBeyondViewport: true });
      const png = Buffer.from(r.data, 'base64');
      writeFileSync(file, png);
      return png;
    },
    navigations: () => navigations,
    async close() {
      ws.close();
      await stop();
    },
  };
}
