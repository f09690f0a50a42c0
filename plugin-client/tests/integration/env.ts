// Integration tests run against a Supabase stack named by the environment:
// the local stand-in (`python -m devstack up`, then `set -a; . .devstack/env`)
// or a real `supabase start` stack. Without SUPABASE_URL they are skipped.
import type { SupabaseClient, SupportedStorage } from '@supabase/supabase-js';
import { nodeSupabase } from '../support/node-supabase';

export interface StackEnv {
  url: string;
  anonKey: string;
  serviceRoleKey: string;
}

function read(): StackEnv | null {
  const url = process.env.SUPABASE_URL;
  const anonKey = process.env.SUPABASE_ANON_KEY;
  const serviceRoleKey = process.env.SUPABASE_SERVICE_ROLE_KEY;
  if (!url || !anonKey || !serviceRoleKey) return null;
  return { url, anonKey, serviceRoleKey };
}

export const stack = read();

if (!stack) {
  console.warn(
    '[integration] SKIPPED: set SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY ' +
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
  return nodeSupabase(url, anonKey, {
    auth: { storage, persistSession: true, autoRefreshToken: false, detectSessionInUrl: false },
  });
}

/** The worker's view: service role, no session. */
export function serviceClient(): SupabaseClient {
  const { url, serviceRoleKey } = requireStack();
  return nodeSupabase(url, serviceRoleKey, { auth: { persistSession: false, autoRefreshToken: false } });
}

/**
 * Plays the worker for one job through the service-role API. The job is taken
 * by id (not claim_jobs) so tests never touch other jobs on a shared stack.
 */
export class TestWorker {
  constructor(
    private readonly service: SupabaseClient,
    readonly workerId = `plugin-client-it-${process.pid}`,
  ) {}

  async start(jobId: string): Promise<void> {
    const { error } = await this.service
      .from('jobs')
      .update({
        status: 'running',
        worker_id: this.workerId,
        attempts: 1,
        started_at: new Date().toISOString(),
        lease_expires_at: new Date(Date.now() + 60_000).toISOString(),
      })
      .eq('id', jobId);
    if (error) throw new Error(`start ${jobId}: ${error.message}`);
  }

  async progress(jobId: string, report: { percent?: number; message?: string; partial?: string }): Promise<void> {
    const { error } = await this.service.rpc('report_progress', { job_id: jobId, worker_id: this.workerId, ...report });
    if (error) throw new Error(`report_progress ${jobId}: ${error.message}`);
  }

  async complete(jobId: string, result: unknown): Promise<void> {
    const { error } = await this.service.rpc('complete_job', { job_id: jobId, worker_id: this.workerId, result });
    if (error) throw new Error(`complete_job ${jobId}: ${error.message}`);
  }

  async fail(jobId: string, jobError: Record<string, unknown>, retryable = false): Promise<void> {
    const { error } = await this.service.rpc('fail_job', { job_id: jobId, worker_id: this.workerId, error: jobError, retryable });
    if (error) throw new Error(`fail_job ${jobId}: ${error.message}`);
  }

  /** Removes the given users' jobs so nothing is left queued for other suites. */
  async cleanup(userIds: readonly string[]): Promise<void> {
    if (userIds.length === 0) return;
    await this.service.from('jobs').delete().in('user_id', [...userIds]);
  }
}
