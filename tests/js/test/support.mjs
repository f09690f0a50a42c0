// Shared helpers for the supabase-js conformance suite.
//
// The suite talks to whatever stack the environment names, so it runs unchanged against devstack
// and against a real `supabase start` stack (with this project's migrations applied):
//   SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY  (required)
//   SUPABASE_PUBLISHABLE_KEY, SUPABASE_SECRET_KEY  (the new key flavour)
//   SUPABASE_KEY_FLAVOUR  `new` (publishable + secret keys; the default when they are set) or
//                        `legacy` (anon + service_role JWTs): which keys the clients are made with.
//                        scripts/test.sh runs the suite once per flavour.
//   DATABASE_URL         (optional: fixture tables through `pg`; those tests skip without it)
//   SUPABASE_JWT_SECRET  (optional: minting tokens; those checks skip without it)

import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createClient } from '@supabase/supabase-js';

const REQUIRED = ['SUPABASE_URL', 'SUPABASE_ANON_KEY', 'SUPABASE_SERVICE_ROLE_KEY'];
const missing = REQUIRED.filter((name) => !process.env[name]);
if (missing.length) {
  throw new Error(
    `Missing environment variable(s): ${missing.join(', ')}.\n` +
      'Export the stack settings first, e.g. `set -a; . ../../.devstack/env; set +a` for devstack ' +
      '(or the values printed by `supabase status -o env` for a real stack).',
  );
}
if (typeof globalThis.WebSocket !== 'function') {
  throw new Error(
    `No global WebSocket in Node ${process.version}: run the suite with the Node 22 from ` +
      'devDependencies (`npm test`, or ./node_modules/.bin/node --test).',
  );
}

export const URL_ = process.env.SUPABASE_URL.replace(/\/+$/, '');
export const KEY_FLAVOUR = process.env.SUPABASE_KEY_FLAVOUR || (process.env.SUPABASE_PUBLISHABLE_KEY ? 'new' : 'legacy');
if (KEY_FLAVOUR !== 'new' && KEY_FLAVOUR !== 'legacy') {
  throw new Error(`SUPABASE_KEY_FLAVOUR must be "new" or "legacy", not ${JSON.stringify(KEY_FLAVOUR)}`);
}
if (KEY_FLAVOUR === 'new' && !(process.env.SUPABASE_PUBLISHABLE_KEY && process.env.SUPABASE_SECRET_KEY)) {
  throw new Error('SUPABASE_KEY_FLAVOUR=new needs SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY');
}
/** The key a browser/plugin client is made with: the publishable key, or the legacy anon JWT. */
export const ANON_KEY = KEY_FLAVOUR === 'new' ? process.env.SUPABASE_PUBLISHABLE_KEY : process.env.SUPABASE_ANON_KEY;
/** The key a server (the worker) is made with: the secret key, or the legacy service_role JWT. */
export const SERVICE_KEY = KEY_FLAVOUR === 'new' ? process.env.SUPABASE_SECRET_KEY : process.env.SUPABASE_SERVICE_ROLE_KEY;
export const DATABASE_URL = process.env.DATABASE_URL || '';
export const JWT_SECRET = process.env.SUPABASE_JWT_SECRET || '';
// CI (scripts/test.sh) sets REQUIRE_FULL_SUITE: there nothing may be skipped for want of a variable.
if (process.env.REQUIRE_FULL_SUITE === '1' && (!DATABASE_URL || !JWT_SECRET)) {
  throw new Error('REQUIRE_FULL_SUITE: DATABASE_URL and SUPABASE_JWT_SECRET must be set');
}

/** Upper bound for any wait on the network; never a timing assertion. */
export const WAIT_MS = 10_000;

/**
 * @param {string} key
 * @param {Record<string, any>} realtime extra realtime-js options (e.g. a transport)
 */
export function newClient(key = ANON_KEY, realtime = {}) {
  return createClient(URL_, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { timeout: WAIT_MS, ...realtime },
  });
}

/** A WebSocket transport that records every frame the client sends. */
export function spyTransport() {
  /** @type {(string | ArrayBuffer | ArrayBufferView)[]} */
  const sent = [];
  class SpyWebSocket extends globalThis.WebSocket {
    send(data) {
      sent.push(data);
      return super.send(data);
    }
  }
  return { SpyWebSocket, sent };
}

/** A service-role client (the worker's view). */
export function serviceClient() {
  return newClient(SERVICE_KEY);
}

/**
 * A fresh anonymous user, as the Figma plugin signs in by default.
 * @returns {Promise<{client: import('@supabase/supabase-js').SupabaseClient, id: string, session: any}>}
 */
export async function anonymousUser() {
  const client = newClient();
  const { data, error } = await client.auth.signInAnonymously();
  if (error) throw error;
  return { client, id: data.user.id, session: data.session };
}

/** Cancel the user's jobs that are still open, so they do not linger in the shared queue. */
export async function cancelOpenJobs(client) {
  const { data } = await client.from('jobs').select('id').in('status', ['queued', 'running']);
  for (const { id } of data ?? []) await client.rpc('cancel_job', { job_id: id });
}

/** Remove every channel and close the socket so `node --test` can exit. */
export async function closeClient(client) {
  if (!client) return;
  await client.removeAllChannels();
  client.realtime.disconnect();
}

export function suffix() {
  return randomBytes(4).toString('hex');
}

export function uniqueEmail() {
  return `js-${Date.now()}-${suffix()}@example.com`;
}

/**
 * Subscribe a channel and resolve with the final status (SUBSCRIBED, CHANNEL_ERROR, TIMED_OUT,
 * CLOSED) and the error, if any.
 * @returns {Promise<{status: string, err?: Error}>}
 */
export function subscribe(channel) {
  return withTimeout(
    new Promise((resolve) => {
      channel.subscribe((status, err) => resolve({ status, err }));
    }),
    WAIT_MS + 2_000,
    `subscribe ${channel.topic}`,
  );
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @returns {Promise<T>}
 */
export function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Collects values pushed by callbacks; `next(pred)` resolves with the first (past or future)
 * item matching pred, bounded by WAIT_MS.
 */
export class Inbox {
  constructor() {
    /** @type {any[]} */
    this.items = [];
    /** @type {{pred: (x: any) => boolean, resolve: (x: any) => void}[]} */
    this.waiters = [];
    this.push = this.push.bind(this);
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) {
      if (w.pred(item)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(item);
      }
    }
  }

  /** @param {(x: any) => boolean} pred */
  next(pred = () => true, what = 'a message', ms = WAIT_MS) {
    const found = this.items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { pred, resolve };
      this.waiters.push(waiter);
    });
    return withTimeout(p, ms, what).catch((e) => {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      throw new Error(`${e.message}; got so far: ${JSON.stringify(this.items).slice(0, 2000)}`);
    });
  }
}

/** Resolve after ms (only to let a quiet period pass before asserting absence). */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

/** An HS256 JWT signed with `secret` (use a random secret to forge one). */
export function signJwt(claims, secret = randomBytes(32).toString('hex')) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** Decode a JWT's claims (no verification). */
export function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

/** Enqueue a job as `client`; throws on error. */
export async function enqueue(client, kind = 'rename_layers', payload = { layers: [] }, extra = {}) {
  const { data, error } = await client.rpc('enqueue_job', { kind, payload, ...extra });
  if (error) throw new Error(`enqueue_job failed: ${JSON.stringify(error)}`);
  return data;
}

export { randomUUID };

// ---- fixture tables through DATABASE_URL ------------------------------------------------------

/**
 * Create a private fixture table `public.<name>` owned per row by `owner` (RLS owner = auth.uid()),
 * in the supabase_realtime publication. Returns {name, drop()}. Requires DATABASE_URL.
 */
export async function createFixtureTable(prefix = 'js_items') {
  const { default: pg } = await import('pg');
  const name = `${prefix}_${suffix()}`;
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  const q = (s) => `"${s}"`;
  try {
    await db.query(`
      create table public.${q(name)} (
        id bigint generated by default as identity primary key,
        owner uuid not null default auth.uid(),
        name text not null,
        qty int not null default 0,
        tag text,
        slug text unique
      );
      alter table public.${q(name)} enable row level security;
      create policy "owner rows" on public.${q(name)} for all to authenticated
        using (owner = (select auth.uid())) with check (owner = (select auth.uid()));
      grant select, insert, update, delete on table public.${q(name)} to authenticated;
      alter publication supabase_realtime add table public.${q(name)};
      notify pgrst, 'reload schema';
    `);
  } catch (e) {
    await db.end();
    throw e;
  }
  await db.end();
  return {
    name,
    async drop() {
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      try {
        await c.query(`
          alter publication supabase_realtime drop table public.${q(name)};
          drop table if exists public.${q(name)};
          notify pgrst, 'reload schema';
        `);
      } finally {
        await c.end();
      }
    },
  };
}

/** Wait (bounded) until PostgREST's schema cache knows `table` (after `notify pgrst`). */
export async function waitForTable(client, table) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const { error } = await client.from(table).select('id').limit(1);
    if (!error) return;
    if (error.code !== 'PGRST205' || Date.now() > deadline) {
      throw new Error(`table ${table} not reachable over REST: ${JSON.stringify(error)}`);
    }
    await sleep(200);
  }
}
