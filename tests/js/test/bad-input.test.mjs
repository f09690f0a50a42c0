// Refusals on the wire: forged / expired JWTs, missing keys, malformed JSON bodies.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createClient } from '@supabase/supabase-js';
import {
  ANON_KEY,
  JWT_SECRET,
  URL_,
  WAIT_MS,
  anonymousUser,
  closeClient,
  jwtClaims,
  newClient,
  signJwt,
  subscribe,
} from './support.mjs';

function clientWithToken(token) {
  return createClient(URL_, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: { headers: { Authorization: `Bearer ${token}` } },
    realtime: { timeout: WAIT_MS },
  });
}

const now = () => Math.floor(Date.now() / 1000);

test('a forged JWT (wrong signature) is a 401 PGRST301 on REST', async () => {
  const forged = signJwt({ sub: '00000000-0000-0000-0000-000000000001', role: 'service_role', aud: 'authenticated', exp: now() + 3600 }, randomBytes(32).toString('hex'));
  const c = clientWithToken(forged);
  const r = await c.from('jobs').select('id');
  assert.equal(r.status, 401);
  assert.equal(r.data, null);
  assert.equal(r.error?.code, 'PGRST301');
  const rpc = await c.rpc('claim_jobs', { worker_id: 'forger' });
  assert.equal(rpc.status, 401);
  // The same on the wire, with the WWW-Authenticate header.
  const raw = await fetch(`${URL_}/rest/v1/jobs?select=id`, { headers: { apikey: ANON_KEY, Authorization: `Bearer ${forged}` } });
  assert.equal(raw.status, 401);
  assert.match(raw.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.equal((await raw.json()).code, 'PGRST301');
  // A token that is not even a JWT.
  const junk = await clientWithToken('not-a-jwt').from('jobs').select('id');
  assert.equal(junk.status, 401);
  assert.equal(junk.error?.code, 'PGRST301');
});

test('no apikey at all is refused by the gateway (401)', async () => {
  const res = await fetch(`${URL_}/rest/v1/jobs?select=id`);
  assert.equal(res.status, 401);
  await res.arrayBuffer();
});

test('an expired JWT is a 401 PGRST303; a minted valid one works', { skip: !JWT_SECRET && 'SUPABASE_JWT_SECRET not set' }, async () => {
  const alice = await anonymousUser();
  try {
    const base = jwtClaims(alice.session.access_token);
    const expired = signJwt({ ...base, iat: now() - 7200, exp: now() - 3600 }, JWT_SECRET);
    const r = await clientWithToken(expired).from('jobs').select('id');
    assert.equal(r.status, 401);
    assert.equal(r.error?.code, 'PGRST303');
    const fresh = signJwt({ ...base, iat: now(), exp: now() + 600 }, JWT_SECRET);
    const ok = await clientWithToken(fresh).rpc('enqueue_job', { kind: 'rename_layers', payload: {} });
    assert.equal(ok.error, null, JSON.stringify(ok.error));
    assert.equal(ok.data.user_id, alice.id);
    await alice.client.rpc('cancel_job', { job_id: ok.data.id });
  } finally {
    await closeClient(alice.client);
  }
});

test('a forged JWT cannot join a private Realtime channel', async () => {
  const forged = signJwt({ sub: '00000000-0000-0000-0000-000000000001', role: 'authenticated', aud: 'authenticated', exp: now() + 3600 });
  const c = newClient();
  try {
    await c.realtime.setAuth(forged);
    const ch = c.channel('jobs:00000000-0000-0000-0000-000000000001', { config: { private: true } });
    const { status, err } = await subscribe(ch);
    assert.notEqual(status, 'SUBSCRIBED');
    assert.equal(status, 'CHANNEL_ERROR', `status ${status}: ${err}`);
    // Hosted reasons: "JwtSignatureError: Failed to validate JWT signature" (or InvalidJWTToken: ...).
    assert.match(String(err?.message), /JwtSignatureError|InvalidJWTToken/);
  } finally {
    await closeClient(c);
  }
});

test('a malformed JSON body to an RPC is a 400 PGRST102', async () => {
  const alice = await anonymousUser();
  try {
    const res = await fetch(`${URL_}/rest/v1/rpc/enqueue_job`, {
      method: 'POST',
      headers: { apikey: ANON_KEY, Authorization: `Bearer ${alice.session.access_token}`, 'Content-Type': 'application/json' },
      body: '{"kind": "rename_layers", "payload": {',
    });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.code, 'PGRST102');
    assert.equal(typeof body.message, 'string');
    assert.ok('details' in body && 'hint' in body, 'PostgREST error body shape');
  } finally {
    await closeClient(alice.client);
  }
});
