// supabase-js session storage for the plugin iframe. Figma plugin UIs run in an
// opaque-origin iframe where localStorage is unavailable, so the session is kept
// in figma.clientStorage, which only the main thread can reach: every call is
// relayed over postMessage (RequestClient adds request ids and timeouts).
import type { SupportedStorage } from '@supabase/supabase-js';
import type { RequestClient } from '../shared/rpc';

export interface ClientStorageRelayOptions {
  /** Namespace so auth keys cannot collide with the plugin's own settings. */
  keyPrefix?: string;
  timeoutMs?: number;
}

export function createClientStorageRelay(
  requests: RequestClient,
  options: ClientStorageRelayOptions = {},
): SupportedStorage {
  const prefix = options.keyPrefix ?? 'auth:';
  const timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
  return {
    async getItem(key: string): Promise<string | null> {
      return requests.request('storage-get', { key: prefix + key }, timeout);
    },
    async setItem(key: string, value: string): Promise<void> {
      await requests.request('storage-set', { key: prefix + key, value }, timeout);
    },
    async removeItem(key: string): Promise<void> {
      await requests.request('storage-remove', { key: prefix + key }, timeout);
    },
  };
}
