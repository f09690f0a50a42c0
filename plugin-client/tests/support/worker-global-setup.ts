// vitest globalSetup of the integration and e2e projects: runs the REAL
// Python worker (`python -m worker run`) against the stack named by the
// environment, with the model stand-ins as its providers. Without
// SUPABASE_URL it does nothing (the stack tests skip themselves).
//
//   WORKER_PYTHON   interpreter to use (default: <repo>/.venv/bin/python)
//
// The worker's log goes to artifacts/worker-<project>.log (git-ignored).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { keyFlavour } from './key-flavour';

/** plugin-client/ and the repository root above it. */
const PLUGIN_ROOT = resolve(__dirname, '../..');
const REPO_ROOT = resolve(PLUGIN_ROOT, '..');
const ARTIFACTS = join(PLUGIN_ROOT, 'artifacts');

const HEALTH_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 10_000;
/** Model API key the stand-ins accept (any non-empty value). */
const STANDIN_KEY = 'devstack-standin';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the worker's health/metrics server ('' when no worker runs). */
    workerUrl: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? ok(port) : fail(new Error('no free port'))));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((ok) => {
    const timer = setTimeout(() => ok(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      ok(true);
    });
  });
}

function logTail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitForHealth(url: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (exited(child)) {
      throw new Error(`the worker exited (code ${String(child.exitCode)}) before it was healthy:\n${logTail(logPath)}`);
    }
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
      last = `HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(200);
  }
  throw new Error(`the worker was not healthy within ${HEALTH_TIMEOUT_MS} ms (last: ${last}):\n${logTail(logPath)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (exited(child)) return;
  child.kill('SIGTERM');
  if (await waitForExit(child, STOP_TIMEOUT_MS)) return;
  child.kill('SIGKILL');
  await waitForExit(child, STOP_TIMEOUT_MS);
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  project.provide('workerUrl', '');
  const env = { ...process.env };
  if (!env.SUPABASE_URL) return undefined;
  // The legacy flavour runs the worker on the service_role JWT too (it prefers the secret key).
  if (keyFlavour(env) === 'legacy') delete env.SUPABASE_SECRET_KEY;
  for (const name of ['SUPABASE_SERVICE_ROLE_KEY', 'ANTHROPIC_BASE_URL', 'GEMINI_BASE_URL'] as const) {
    if (!env[name]) throw new Error(`${name} must be set with SUPABASE_URL: the tests run the worker against the model stand-ins`);
  }
  const python = env.WORKER_PYTHON ?? join(REPO_ROOT, '.venv/bin/python');
  if (!existsSync(python)) throw new Error(`no Python for the worker at ${python} (set WORKER_PYTHON)`);

  const port = await freePort();
  const name = project.name || 'tests';
  const workerId = `plugin-client-${name}-${process.pid}-${Date.now().toString(36)}`;
  mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = join(ARTIFACTS, `worker-${name}.log`);
  const log = createWriteStream(logPath);

  const child = spawn(python, ['-m', 'worker', 'run'], {
    cwd: REPO_ROOT,
    env: {
      ...env,
      ANTHROPIC_API_KEY: STANDIN_KEY,
      GEMINI_API_KEY: STANDIN_KEY,
      PORT: String(port),
      HEALTH_HOST: '127.0.0.1',
      WORKER_ID: workerId,
      WORKER_STORE: 'supabase',
      // Short leases and a quick sweep: a cancel is noticed within a heartbeat,
      // a missed wake-up within a sweep, and shutdown does not wait long.
      LEASE_SECONDS: '15',
      HEARTBEAT_SECONDS: '1',
      SWEEP_SECONDS: '2',
      DRAIN_TIMEOUT_SECONDS: '3',
      PROVIDER_TIMEOUT_SECONDS: '60',
      PYTHONUNBUFFERED: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const spawnError = new Promise<never>((_, fail) => child.once('error', fail));

  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([waitForHealth(url, child, logPath), spawnError]);
  } catch (error) {
    await stop(child);
    log.end();
    throw error;
  }
  console.log(`[worker] ${workerId} healthy on ${url} (log: ${logPath})`);
  project.provide('workerUrl', url);

  return async () => {
    await stop(child);
    log.end();
  };
}
