// Storage through the real storage-js: the worker (service role) writes a job artifact into the
// private bucket job-artifacts; only the owner reads it; signed URLs work without auth headers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { URL_, anonymousUser, closeClient, randomUUID, serviceClient } from './support.mjs';

// A 1x1 transparent PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);
const BUCKET = 'job-artifacts';

let alice;
let bob;
let worker;
let path;

before(async () => {
  alice = await anonymousUser();
  bob = await anonymousUser();
  worker = serviceClient();
  path = `${alice.id}/${randomUUID()}/image.png`;
  const { data, error } = await worker.storage.from(BUCKET).upload(path, PNG, { contentType: 'image/png' });
  assert.equal(error, null, JSON.stringify(error));
  assert.equal(data.path, path);
  assert.equal(data.fullPath, `${BUCKET}/${path}`);
});

after(async () => {
  if (path) await worker?.storage.from(BUCKET).remove([path]);
  await closeClient(alice?.client);
  await closeClient(bob?.client);
  await closeClient(worker);
});

test('the owner downloads the artifact the service role uploaded', async () => {
  const { data, error } = await alice.client.storage.from(BUCKET).download(path);
  assert.equal(error, null, JSON.stringify(error));
  assert.ok(data instanceof Blob);
  assert.deepEqual(Buffer.from(await data.arrayBuffer()), PNG);
  assert.equal(data.type, 'image/png');
  const listed = await alice.client.storage.from(BUCKET).list(path.split('/').slice(0, 2).join('/'));
  assert.equal(listed.error, null);
  assert.deepEqual(listed.data.map((o) => o.name), ['image.png']);
});

test('createSignedUrl gives a URL that works without auth headers', async () => {
  const { data, error } = await alice.client.storage.from(BUCKET).createSignedUrl(path, 60);
  assert.equal(error, null, JSON.stringify(error));
  assert.ok(data.signedUrl.startsWith(`${URL_}/storage/v1/object/sign/${BUCKET}/`), data.signedUrl);
  const res = await fetch(data.signedUrl);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), PNG);
  // A tampered token is refused.
  const u = new URL(data.signedUrl);
  const token = u.searchParams.get('token');
  u.searchParams.set('token', `${token.slice(0, -4)}AAAA`);
  const bad = await fetch(u);
  assert.ok(bad.status >= 400, `tampered token answered ${bad.status}`);
  await bad.arrayBuffer();
});

test("another user can neither download nor sign the owner's artifact", async () => {
  const dl = await bob.client.storage.from(BUCKET).download(path);
  assert.equal(dl.data, null);
  assert.ok(dl.error, 'download by another user fails');
  const signed = await bob.client.storage.from(BUCKET).createSignedUrl(path, 60);
  assert.equal(signed.data, null);
  assert.ok(signed.error, 'signing by another user fails');
  // Users cannot write into the bucket, not even their own folder.
  const up = await alice.client.storage.from(BUCKET).upload(`${alice.id}/x/evil.png`, PNG, { contentType: 'image/png' });
  assert.equal(up.data, null);
  assert.ok(up.error, 'client upload is refused');
});
