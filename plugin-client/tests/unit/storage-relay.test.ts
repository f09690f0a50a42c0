// The supabase-js storage adapter relayed over postMessage to figma.clientStorage.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClientStorageRelay } from '../../src/auth/storage-relay';
import { routeMessage } from '../../src/main/router';
import { RelayRemoteError, RelayTimeoutError, RequestClient, type MessagePortLike } from '../../src/shared/rpc';
import { FakeFigma } from '../support/fake-figma';
import { createClient } from '@supabase/supabase-js';

/** A UI-side port whose messages are answered by the real main-thread router. */
function connectedPort(fake: FakeFigma): MessagePortLike & { sent: unknown[] } {
  const listeners = new Set<(m: unknown) => void>();
  const sent: unknown[] = [];
  return {
    sent,
    post(message) {
      sent.push(message);
      // Asynchronous like postMessage.
      void routeMessage(fake.asPluginApi(), message).then((response) => {
        if (response) for (const l of listeners) l(response);
      });
    },
    listen(handler) {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
  };
}

/** A port that records messages and lets the test answer (or not). */
function manualPort(): MessagePortLike & { sent: { type: string; requestId: string }[]; deliver(m: unknown): void } {
  const listeners = new Set<(m: unknown) => void>();
  const sent: { type: string; requestId: string }[] = [];
  return {
    sent,
    post(message) {
      sent.push(message as { type: string; requestId: string });
    },
    listen(handler) {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
    deliver(m) {
      for (const l of listeners) l(m);
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('client storage relay', () => {
  it('stores, reads and removes items in figma.clientStorage under a prefix', async () => {
    const fake = new FakeFigma();
    const storage = createClientStorageRelay(new RequestClient(connectedPort(fake)));
    expect(await storage.getItem('sb-local-auth-token')).toBeNull();
    await storage.setItem('sb-local-auth-token', '{"access_token":"t"}');
    expect(fake.storage.get('auth:sb-local-auth-token')).toBe('{"access_token":"t"}');
    expect(await storage.getItem('sb-local-auth-token')).toBe('{"access_token":"t"}');
    await storage.removeItem('sb-local-auth-token');
    expect(fake.storage.has('auth:sb-local-auth-token')).toBe(false);
    expect(await storage.getItem('sb-local-auth-token')).toBeNull();
  });

  it('returns null for non-string values left in clientStorage', async () => {
    const fake = new FakeFigma();
    fake.storage.set('auth:k', { not: 'a string' });
    const storage = createClientStorageRelay(new RequestClient(connectedPort(fake)));
    expect(await storage.getItem('k')).toBeNull();
  });

  it('matches answers to requests by id, whatever their order', async () => {
    const port = manualPort();
    let n = 0;
    const storage = createClientStorageRelay(new RequestClient(port, { newId: () => `id-${++n}` }));
    const first = storage.getItem('a');
    const second = storage.getItem('b');
    expect(port.sent.map((m) => m.requestId)).toEqual(['id-1', 'id-2']);
    port.deliver({ type: 'response', requestId: 'id-2', ok: true, result: 'B' });
    port.deliver({ type: 'response', requestId: 'id-1', ok: true, result: 'A' });
    await expect(first).resolves.toBe('A');
    await expect(second).resolves.toBe('B');
  });

  it('rejects with RelayTimeoutError when main does not answer, and ignores the late answer', async () => {
    vi.useFakeTimers();
    const port = manualPort();
    const client = new RequestClient(port, { newId: () => 'only' });
    const storage = createClientStorageRelay(client, { timeoutMs: 2000 });
    const pending = storage.getItem('slow');
    const assertion = expect(pending).rejects.toBeInstanceOf(RelayTimeoutError);
    await vi.advanceTimersByTimeAsync(1999);
    expect(client.pendingCount).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    await assertion;
    expect(client.pendingCount).toBe(0);
    // A late answer must not throw or resolve anything.
    expect(() => port.deliver({ type: 'response', requestId: 'only', ok: true, result: 'late' })).not.toThrow();
  });

  it('surfaces errors reported by main', async () => {
    const port = manualPort();
    const storage = createClientStorageRelay(new RequestClient(port, { newId: () => 'x' }));
    const pending = storage.setItem('k', 'v');
    port.deliver({ type: 'response', requestId: 'x', ok: false, error: 'quota exceeded' });
    await expect(pending).rejects.toThrowError(RelayRemoteError);
    await expect(pending).rejects.toThrowError('quota exceeded');
  });

  it('ignores unrelated window messages', async () => {
    const port = manualPort();
    const client = new RequestClient(port, { newId: () => 'r' });
    const pending = client.request('storage-get', { key: 'k' });
    port.deliver({ something: 'else' });
    port.deliver({ type: 'response', requestId: 'other', ok: true, result: 'wrong' });
    expect(client.pendingCount).toBe(1);
    port.deliver({ type: 'response', requestId: 'r', ok: true, result: 'right' });
    await expect(pending).resolves.toBe('right');
  });

  it('works as supabase-js auth storage (session persisted through the relay)', async () => {
    const fake = new FakeFigma();
    const storage = createClientStorageRelay(new RequestClient(connectedPort(fake)));
    const session = {
      access_token: 'header.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.sig',
      token_type: 'bearer',
      expires_in: 3600,
      expires_at: 9999999999,
      refresh_token: 'r1',
      user: { id: 'u1', aud: 'authenticated', role: 'authenticated', app_metadata: {}, user_metadata: {}, created_at: '2025-01-01T00:00:00Z' },
    };
    fake.storage.set('auth:sb-localhost-auth-token', JSON.stringify(session));
    const supabase = createClient('http://localhost:54321', 'anon', {
      auth: { storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
      global: { fetch: async () => new Response('{}', { status: 500 }) },
    });
    const { data } = await supabase.auth.getSession();
    expect(data.session?.user.id).toBe('u1');
  });
});
