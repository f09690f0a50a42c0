// Auth (GoTrue) through the real supabase-js auth client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthApiError, isAuthApiError } from '@supabase/supabase-js';
import { jwtClaims, newClient, sleep, uniqueEmail } from './support.mjs';

test('signInAnonymously gives an anonymous authenticated session', async () => {
  const client = newClient();
  const { data, error } = await client.auth.signInAnonymously();
  assert.equal(error, null);
  assert.ok(data.session.access_token && data.session.refresh_token);
  assert.equal(data.user.is_anonymous, true);
  const claims = jwtClaims(data.session.access_token);
  assert.equal(claims.sub, data.user.id);
  assert.equal(claims.role, 'authenticated');
  assert.equal(claims.is_anonymous, true);
  const { data: got, error: getErr } = await client.auth.getUser();
  assert.equal(getErr, null);
  assert.equal(got.user.id, data.user.id);
});

test('signUp with email/password (autoconfirm), then signInWithPassword, refresh, getUser, signOut', async () => {
  const email = uniqueEmail();
  const password = 'correct horse battery staple';
  const a = newClient();
  const signUp = await a.auth.signUp({ email, password, options: { data: { plan: 'pro' } } });
  assert.equal(signUp.error, null);
  assert.ok(signUp.data.session, 'autoconfirm: signUp returns a session');
  assert.equal(signUp.data.user.email, email);
  assert.equal(signUp.data.user.user_metadata.plan, 'pro');

  const again = await newClient().auth.signUp({ email, password });
  // Hosted answers an existing confirmed email with 422 user_already_exists (autoconfirm on).
  assert.ok(again.error, 'second signUp with the same email fails');
  assert.equal(again.error.code, 'user_already_exists');

  const b = newClient();
  const signIn = await b.auth.signInWithPassword({ email, password });
  assert.equal(signIn.error, null);
  assert.equal(signIn.data.user.id, signUp.data.user.id);
  const first = signIn.data.session;
  assert.equal(jwtClaims(first.access_token).email, email);

  await sleep(1100); // a new second, so the refreshed JWT differs (iat/exp)
  const refreshed = await b.auth.refreshSession();
  assert.equal(refreshed.error, null);
  assert.notEqual(refreshed.data.session.refresh_token, first.refresh_token);
  assert.notEqual(refreshed.data.session.access_token, first.access_token);
  assert.equal(refreshed.data.user.id, signUp.data.user.id);
  const user = await b.auth.getUser();
  assert.equal(user.error, null);
  assert.equal(user.data.user.email, email);

  const out = await b.auth.signOut();
  assert.equal(out.error, null);
  const { data: s } = await b.auth.getSession();
  assert.equal(s.session, null);
  // The signed-out session's JWT is not usable for /user anymore on the server either
  // (GoTrue checks the session): getUser with the old token fails.
  const stale = await newClient().auth.getUser(refreshed.data.session.access_token);
  assert.ok(stale.error, 'getUser with a signed-out session token fails');
  // ... and its refresh token is revoked.
  const revoked = await newClient().auth.refreshSession({ refresh_token: refreshed.data.session.refresh_token });
  assert.ok(revoked.error, 'refresh after signOut fails');
  assert.equal(revoked.data.session, null);
});

test('wrong password gives AuthApiError invalid_credentials (400)', async () => {
  const email = uniqueEmail();
  const c = newClient();
  assert.equal((await c.auth.signUp({ email, password: 'right-password-1' })).error, null);
  const { data, error } = await newClient().auth.signInWithPassword({ email, password: 'wrong-password' });
  assert.equal(data.session, null);
  assert.ok(error instanceof AuthApiError, `expected AuthApiError, got ${error?.constructor?.name}`);
  assert.ok(isAuthApiError(error));
  assert.equal(error.status, 400);
  assert.equal(error.code, 'invalid_credentials');
  const unknown = await newClient().auth.signInWithPassword({ email: uniqueEmail(), password: 'x-password' });
  assert.equal(unknown.error?.code, 'invalid_credentials');
});
