// Integration tests run against a Supabase stack named by the environment:
// the local stand-in (`python -m devstack up`, then `set -a; . .devstack/env`)
// or a real `supabase start` stack. Without SUPABASE_URL they are skipped.
// The jobs are run by the real worker, which the globalSetup
// (tests/support/worker-global-setup.ts) starts for the suite.
import { createClient, type SupabaseClient, type SupportedStorage } from '@supabase/supabase-js';
import { keyFlavour, type KeyFlavour } from '../support/key-flavour';

export interface StackEnv {
  url: string;
  flavour: KeyFlavour;
  /** What the plugin is configured with: the publishable key, or the legacy anon JWT. */
  anonKey: string;
  /** What the worker side uses: the secret key, or the legacy service_role JWT. */
  serviceRoleKey: string;
}

function read(): StackEnv | null {
  const url = process.env.SUPABASE_URL;
  const flavour = keyFlavour();
  const anonKey = flavour === 'new' ? process.env.SUPABASE_PUBLISHABLE_KEY : process.env.SUPABASE_ANON_KEY;
  const serviceRoleKey = flavour === 'new' ? process.env.SUPABASE_SECRET_KEY : process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!url || !anonKey || !serviceRoleKey) return null;
  return { url, flavour, anonKey, serviceRoleKey };
}

export const stack = read();

if (!stack && process.env.REQUIRE_FULL_SUITE === '1') {
  throw new Error(
    `[integration] REQUIRE_FULL_SUITE: SUPABASE_URL and the ${keyFlavour()} flavour's keys must be set ` +
      '(new: SUPABASE_PUBLISHABLE_KEY + SUPABASE_SECRET_KEY; legacy: SUPABASE_ANON_KEY + SUPABASE_SERVICE_ROLE_KEY)',
  );
}
if (!stack) {
  console.warn(
    '[integration] SKIPPED: set SUPABASE_URL and SUPABASE_PUBLISHABLE_KEY + SUPABASE_SECRET_KEY (or the legacy keys) ' +
      '(e.g. `python -m devstack up && set -a && . .devstack/env`) to run the integration tests.',
  );
}

export function requireStack(): StackEnv {
  if (!stack) throw new Error('no stack configured');
  return stack;
}

export function memoryStorage(): SupportedStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: async (k) => data.get(k) ?? null,
    setItem: async (k, v) => {
      data.set(k, v);
    },
    removeItem: async (k) => {
      data.delete(k);
    },
  };
}

/** A client as the plugin UI builds it (session kept in the given storage). */
export function userClient(storage: SupportedStorage = memoryStorage()): SupabaseClient {
  const { url, anonKey } = requireStack();
  return createClient(url, anonKey, {
    auth: { storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

/** The worker's view: service role, no session. */
export function serviceClient(): SupabaseClient {
  const { url, serviceRoleKey } = requireStack();
  return createClient(url, serviceRoleKey, { auth: { persistSession: false, autoRefreshToken: false } });
}

/**
 * Removes the given users' jobs and artifacts so nothing is left queued or
 * running for other suites (the worker drops a job whose row is gone).
 */
export async function cleanupUsers(userIds: readonly string[]): Promise<void> {
  if (userIds.length === 0) return;
  const service = serviceClient();
  const { data } = await service.from('jobs').select('kind,result').in('user_id', [...userIds]);
  const paths = ((data ?? []) as { kind: string; result: unknown }[])
    .filter((j) => j.kind === 'generate_image')
    .map((j) => (j.result !== null && typeof j.result === 'object' ? (j.result as { path?: unknown }).path : undefined))
    .filter((p): p is string => typeof p === 'string' && p !== '');
  if (paths.length > 0) await service.storage.from('job-artifacts').remove(paths);
  const { error } = await service.from('jobs').delete().in('user_id', [...userIds]);
  if (error) console.warn(`[cleanup] could not delete jobs: ${error.message}`);
}

/** The job row as the service role sees it (for checks that must not go through the client under test). */
export async function serviceJob(id: string): Promise<{ status: string; result: unknown; progress: unknown } | null> {
  const { data, error } = await serviceClient().from('jobs').select('status,result,progress').eq('id', id).maybeSingle();
  if (error) throw new Error(`read job ${id}: ${error.message}`);
  return data as { status: string; result: unknown; progress: unknown } | null;
}
