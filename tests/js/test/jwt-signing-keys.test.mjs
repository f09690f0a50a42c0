// Asymmetric JWT signing keys: supabase-js verifies the stack's access tokens itself, through the
// JWKS at /auth/v1/.well-known/jwks.json, instead of asking the server (/auth/v1/user).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, isAuthError } from '@supabase/supabase-js';
import { ANON_KEY, URL_ } from './support.mjs';

/** A client whose requests are recorded, so a test can tell a local check from a round trip. */
function recordingClient() {
  const requests = [];
  const recording = (input, init) => {
    requests.push(new URL(input instanceof Request ? input.url : String(input)).pathname);
    return fetch(input, init);
  };
  const client = createClient(URL_, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: recording },
  });
  return { client, requests };
}

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

/** An ES256 token signed by a key the stack never had, claiming `kid`. */
async function foreignToken(kid, claims) {
  const { privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const input = `${b64url(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, Buffer.from(input));
  return `${input}.${b64url(new Uint8Array(signature))}`;
}

test('getClaims verifies an ES256 access token with the JWKS, without calling /auth/v1/user', async (t) => {
  const { client, requests } = recordingClient();
  const { data, error } = await client.auth.signInAnonymously();
  assert.equal(error, null);
  const header = JSON.parse(Buffer.from(data.session.access_token.split('.')[0], 'base64url'));
  if (header.alg.startsWith('HS')) {
    t.skip('the stack signs with HS256 (DEVSTACK_JWT=legacy): getClaims asks /auth/v1/user by design');
    return;
  }
  assert.equal(header.alg, 'ES256');
  assert.ok(header.kid, 'the token names its key');

  requests.length = 0;
  const claims = await client.auth.getClaims();
  assert.equal(claims.error, null);
  assert.equal(claims.data.claims.sub, data.user.id);
  assert.equal(claims.data.claims.role, 'authenticated');
  assert.equal(claims.data.claims.iss, `${URL_}/auth/v1`);
  assert.equal(claims.data.header.kid, header.kid);
  assert.deepEqual(requests, ['/auth/v1/.well-known/jwks.json'], 'fetched the JWKS and nothing else');

  requests.length = 0;
  const again = await client.auth.getClaims();
  assert.equal(again.error, null);
  assert.deepEqual(requests, [], 'the JWKS is cached: no request at all the second time');

  const forged = await foreignToken(header.kid, { ...claims.data.claims, role: 'service_role' });
  const refused = await client.auth.getClaims(forged);
  assert.equal(refused.data, null);
  assert.ok(isAuthError(refused.error));
  assert.equal(refused.error.message, 'Invalid JWT signature');
  assert.deepEqual(requests, [], 'refused locally, with the cached key');
});

test('the JWKS is open, cacheable and holds public keys only', async () => {
  const response = await fetch(`${URL_}/auth/v1/.well-known/jwks.json`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('cache-control'), 'public, max-age=600');
  const { keys } = await response.json();
  for (const key of keys) {
    assert.ok(!('d' in key) && !('k' in key), 'no private or symmetric key material');
    assert.ok(key.kid && key.x && key.y);
    assert.deepEqual([key.kty, key.crv, key.alg, key.use, key.key_ops], ['EC', 'P-256', 'ES256', 'sig', ['verify']]);
  }
});
