// manifest.json's network access: production reaches only Supabase over TLS; development
// reaches the URL `python -m devstack up` prints (tools/devstack/devstack/paths.py) and its localhost alias.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(__dirname, '../..');
const manifest = JSON.parse(readFileSync(resolve(root, 'manifest.json'), 'utf8')) as {
  networkAccess: { allowedDomains: string[]; devAllowedDomains: string[] };
};
const devstackPaths = readFileSync(resolve(root, '../tools/devstack/devstack/paths.py'), 'utf8');

function devstackApiOrigin(): { host: string; port: string } {
  const host = /^HOST = "([^"]+)"$/m.exec(devstackPaths)?.[1];
  const port = /^API_PORT = int\(os\.environ\.get\("DEVSTACK_API_PORT", "(\d+)"\)\)$/m.exec(devstackPaths)?.[1];
  if (!host || !port) throw new Error('tools/devstack/devstack/paths.py no longer defines HOST / API_PORT as this test expects');
  return { host, port };
}

describe('manifest networkAccess', () => {
  it('lets the development plugin reach the devstack URL as printed, and as localhost', () => {
    const { host, port } = devstackApiOrigin();
    expect(host).toBe('127.0.0.1');
    for (const name of [host, 'localhost']) {
      for (const scheme of ['http', 'ws']) {
        expect(manifest.networkAccess.devAllowedDomains).toContain(`${scheme}://${name}:${port}`);
      }
    }
  });

  it('allows only Supabase over TLS in production', () => {
    expect(manifest.networkAccess.allowedDomains).toEqual(['https://*.supabase.co', 'wss://*.supabase.co']);
  });
});
