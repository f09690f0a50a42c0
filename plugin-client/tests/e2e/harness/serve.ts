// Serves the harness over a loopback HTTP server: host page, harness bundle,
// __html__ and dist/code.js. Loopback matters: Chromium's local-network
// access rules block a public (or unknown) origin from calling a Supabase
// stack on 127.0.0.1, while a loopback page may, like Figma's dev setup.
import { build } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../../..');

export function distReady(): boolean {
  return existsSync(join(root, 'dist/code.js')) && existsSync(join(root, 'dist/ui.html'));
}

async function bundleHarness(): Promise<string> {
  const out = await build({
    entryPoints: [join(__dirname, 'host.ts')],
    bundle: true,
    write: false,
    format: 'iife',
    target: 'es2020',
    platform: 'browser',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error('harness bundle is empty');
  return file.text;
}

export interface HarnessServer {
  url: string;
  close(): Promise<void>;
}

export async function startHarnessServer(): Promise<HarnessServer> {
  const harness = await bundleHarness();
  const code = readFileSync(join(root, 'dist/code.js'), 'utf8');
  const html = readFileSync(join(root, 'dist/ui.html'), 'utf8');
  // `<` escaped so the HTML string cannot close the script element.
  const htmlScript = `globalThis.__html__ = ${JSON.stringify(html).replace(/</g, '\\u003c')};`;
  const files: Record<string, { type: string; body: string }> = {
    '/': {
      type: 'text/html',
      body: '<!doctype html><html><body><script src="/ui-html.js"></script><script src="/harness.js"></script><script src="/code.js"></script></body></html>',
    },
    '/ui-html.js': { type: 'text/javascript', body: htmlScript },
    '/harness.js': { type: 'text/javascript', body: harness },
    '/code.js': { type: 'text/javascript', body: code },
  };
  const server = createServer((req, res) => {
    const file = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': `${file.type}; charset=utf-8` }).end(file.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}
