// The model stand-ins' control API (tools/devstack/devstack/models/README.md). Other suites
// share the stand-ins, so every change is undone in a finally block.
export interface StandinConfig {
  latency_ms: number;
  stream_delay_ms: number;
}

export interface StandinFault {
  provider?: 'anthropic' | 'gemini' | 'any';
  kind: '429' | '500' | '503' | '529' | 'timeout' | 'invalid_json' | 'disconnect';
  count?: number;
  retry_after?: number | null;
  /** Only requests whose text contains this string. */
  match?: string | null;
  hold_seconds?: number;
}

function baseUrl(): string {
  const url = process.env.ANTHROPIC_BASE_URL;
  if (!url) throw new Error('ANTHROPIC_BASE_URL (the model stand-ins) is not set');
  return url.replace(/\/+$/, '');
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const init: RequestInit = { method, signal: AbortSignal.timeout(5_000) };
  if (body !== undefined) {
    init.headers = { 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${baseUrl()}${path}`, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`stand-in ${method} ${path}: HTTP ${response.status} ${text}`);
  return text === '' ? null : (JSON.parse(text) as unknown);
}

/** Runs `fn` with the stand-in latency knobs changed, restoring the previous values afterwards. */
export async function withStandinConfig<T>(config: Partial<StandinConfig>, fn: () => Promise<T>): Promise<T> {
  const previous = (await call('GET', '/_standin/config')) as StandinConfig;
  await call('POST', '/_standin/config', { ...previous, ...config });
  try {
    return await fn();
  } finally {
    await call('POST', '/_standin/config', previous);
  }
}

/**
 * Runs `fn` with `fault` queued (it should carry a `match` unique to the
 * test). If the fault is still pending afterwards, pending faults are cleared
 * so it cannot hit another suite.
 */
export async function withStandinFault<T>(fault: StandinFault, fn: () => Promise<T>): Promise<T> {
  await call('POST', '/_standin/faults', fault);
  try {
    return await fn();
  } finally {
    const pending = (await call('GET', '/_standin/faults')) as { faults?: { match?: string | null }[] };
    if (pending.faults?.some((f) => f.match === fault.match)) await call('DELETE', '/_standin/faults');
  }
}
