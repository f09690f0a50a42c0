// Supabase connection settings, kept in figma.clientStorage via the relay.
import { isRecord } from '../shared/guards';
import type { RequestClient } from '../shared/rpc';

export interface Settings {
  url: string;
  /** The publishable key (`sb_publishable_...`) or the legacy anon JWT; the name predates the former. */
  anonKey: string;
}

const SETTINGS_KEY = 'settings';

export function validateSettings(url: string, anonKey: string): Settings {
  const trimmedUrl = url.trim().replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(trimmedUrl);
  } catch {
    throw new Error('The Supabase URL is not a valid URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new Error('The Supabase URL must start with https:// (or http:// for a local stack)');
  }
  const key = anonKey.trim();
  if (key === '') throw new Error('The publishable (or legacy anon) key is required');
  // A secret key in a plugin ships to every user and bypasses row-level security (and hosted
  // Supabase answers it 401 from a browser anyway).
  if (key.startsWith('sb_secret_')) {
    throw new Error(
      'That is a secret key (sb_secret_...): use the project\'s publishable key (sb_publishable_...) or its legacy anon key',
    );
  }
  if (isServiceRoleJwt(key)) {
    throw new Error(
      'That is the legacy service_role key (secret): use the project\'s publishable key (sb_publishable_...) or its legacy anon key',
    );
  }
  return { url: trimmedUrl, anonKey: key };
}

/** A legacy JWT key whose (unverified) payload says `service_role`. */
function isServiceRoleJwt(key: string): boolean {
  const payload = key.split('.')[1];
  if (payload === undefined) return false;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims: unknown = JSON.parse(json);
    return isRecord(claims) && claims.role === 'service_role';
  } catch {
    return false; // not a JWT: the server will judge it
  }
}

export async function loadSettings(requests: RequestClient): Promise<Settings | null> {
  const raw = await requests.request('storage-get', { key: SETTINGS_KEY });
  if (raw === null) return null;
  try {
    const value: unknown = JSON.parse(raw);
    if (isRecord(value) && typeof value.url === 'string' && typeof value.anonKey === 'string') {
      return { url: value.url, anonKey: value.anonKey };
    }
  } catch {
    // A corrupt entry is treated as "not configured".
  }
  return null;
}

export async function saveSettings(requests: RequestClient, settings: Settings): Promise<void> {
  await requests.request('storage-set', { key: SETTINGS_KEY, value: JSON.stringify(settings) });
}
