// ensureSignedIn with the real supabase-js auth client and a stubbed fetch.
import { describe, expect, it } from 'vitest';
import { ensureSignedIn, SignInError } from '../../src/auth/session';
import { createClient } from '@supabase/supabase-js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (sub: string) => `${b64({ alg: 'HS256' })}.${b64({ sub, role: 'authenticated', exp: 4102444800 })}.sig`;
const user = (id: string, anonymous = true) => ({
  id,
  aud: 'authenticated',
  role: 'authenticated',
  is_anonymous: anonymous,
  app_metadata: {},
  user_metadata: {},
  created_at: '2025-01-01T00:00:00Z',
});
const session = (id: string) => ({
  access_token: jwt(id),
  token_type: 'bearer',
  expires_in: 3600,
  expires_at: 4102444800,
  refresh_token: `refresh-${id}`,
  user: user(id),
});

function setup(routes: Record<string, () => Response>, stored?: string) {
  const data = new Map<string, string>();
  if (stored) data.set('k', JSON.stringify(session(stored)));
  const hits: string[] = [];
  const supabase = createClient('http://localhost:54321', 'anon', {
    auth: {
      storageKey: 'k',
      storage: {
        getItem: async (key) => data.get(key) ?? null,
        setItem: async (key, value) => void data.set(key, value),
        removeItem: async (key) => void data.delete(key),
      },
      autoRefreshToken: false,
      detectSessionInUrl: false,
    },
    global: {
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
        const key = `${init?.method ?? 'GET'} ${url.pathname}`;
        hits.push(key);
        const route = routes[key];
        return route ? route() : new Response('{}', { status: 500 });
      },
    },
  });
  return { supabase, data, hits };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('ensureSignedIn', () => {
  it('signs in anonymously on first run and stores the session', async () => {
    const { supabase, data, hits } = setup({ 'POST /auth/v1/signup': () => json(200, session('new-user')) });
    expect(await ensureSignedIn(supabase)).toBe('new-user');
    expect(hits).toContain('POST /auth/v1/signup');
    expect(data.get('k')).toContain('new-user');
  });

  it('reuses a stored session the server still accepts', async () => {
    const { supabase, hits } = setup({ 'GET /auth/v1/user': () => json(200, user('old-user')) }, 'old-user');
    expect(await ensureSignedIn(supabase)).toBe('old-user');
    expect(hits).not.toContain('POST /auth/v1/signup');
  });

  it('starts afresh when the server no longer knows the stored user', async () => {
    const { supabase, hits } = setup(
      {
        'GET /auth/v1/user': () => json(403, { code: 'user_not_found', message: 'User from sub claim in JWT does not exist' }),
        'POST /auth/v1/signup': () => json(200, session('fresh-user')),
      },
      'gone-user',
    );
    expect(await ensureSignedIn(supabase)).toBe('fresh-user');
    expect(hits).toContain('POST /auth/v1/signup');
  });

  it('keeps the stored session when the server fails (offline or 5xx)', async () => {
    const { supabase, hits } = setup({}, 'offline-user');
    expect(await ensureSignedIn(supabase)).toBe('offline-user');
    expect(hits).not.toContain('POST /auth/v1/signup');
  });

  it('reports a failed anonymous sign-in as SignInError', async () => {
    const { supabase } = setup({
      'POST /auth/v1/signup': () => json(422, { code: 'anonymous_provider_disabled', message: 'Anonymous sign-ins are disabled' }),
    });
    const error = await ensureSignedIn(supabase).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignInError);
    expect((error as Error).message).toMatch(/Anonymous sign-ins are disabled/);
  });
});
