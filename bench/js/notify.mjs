// The supabase-js subscriber of bench/scenarios/notify (clients.py): joins the private topic
// jobs:<uid> the way the plugin does (plugin-client/src/jobs/backend.ts) and records, per `job`
// broadcast, the job id, status, payload updated_at and the receive time (wall clock, epoch s).
//
//   node bench/js/notify.mjs --url URL --topic jobs:<uid> --out FILE --expect N [--max-seconds S]
//   env: NOTIFY_ANON_KEY, NOTIFY_ACCESS_TOKEN (kept off the command line, which `ps` shows)
//
// Prints SUBSCRIBED once joined. Stops after N `job` broadcasts, on SIGTERM/SIGINT, or after
// --max-seconds; then writes FILE (JSON lines {id, status, updated_at, t}) and FILE.meta.json.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// supabase-js comes from bench/js's own npm project (package.json here; scripts/setup_bench.sh
// installs it), so the benchmark needs nothing from the test suites.
const require = createRequire(import.meta.url);
const { createClient } = require('@supabase/supabase-js');
const supabaseJsVersion = require('@supabase/supabase-js/package.json').version;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    topic: { type: 'string' },
    out: { type: 'string' },
    expect: { type: 'string' },
    'max-seconds': { type: 'string', default: '120' },
  },
});
const expect = Number(args.expect);
const maxSeconds = Number(args['max-seconds']);
if (!args.url || !args.topic || !args.out || !(expect > 0) || !(maxSeconds > 0)) {
  console.error('usage: notify.mjs --url URL --topic TOPIC --out FILE --expect N [--max-seconds S]');
  process.exit(2);
}
const anonKey = process.env.NOTIFY_ANON_KEY;
const token = process.env.NOTIFY_ACCESS_TOKEN;
if (!anonKey || !token) {
  console.error('notify.mjs: set NOTIFY_ANON_KEY and NOTIFY_ACCESS_TOKEN');
  process.exit(2);
}

// Wall clock with sub-ms precision: Date.now() has 1 ms steps; timeOrigin + now() does not.
const wallSeconds = () => (performance.timeOrigin + performance.now()) / 1000;
// Date.now() (the system clock, floored to 1 ms) − wallSeconds(): the largest difference over
// 2 ms of samples is the offset between the two to within a few µs.
function clockOffsetMs() {
  let best = -Infinity;
  const until = performance.now() + 2;
  while (performance.now() < until) best = Math.max(best, Date.now() - (performance.timeOrigin + performance.now()));
  return best;
}

/** @type {[string, string, string | null, number][]} */
const records = [];
let jobEvents = 0;
const statuses = [];
const offsetAtStart = clockOffsetMs();

// A minted user JWT instead of an Auth session: with `accessToken` supabase-js hands this token
// to Realtime for every (re)join, as it would hand over the session's token in the plugin.
const supabase = createClient(args.url, anonKey, {
  accessToken: async () => token,
  realtime: { timeout: 15_000 },
});

let finished = false;
async function finish(code) {
  if (finished) return;
  finished = true;
  const lines = records.map(([id, status, updatedAt, t]) => JSON.stringify({ id, status, updated_at: updatedAt, t }));
  writeFileSync(args.out, lines.length ? `${lines.join('\n')}\n` : '');
  const meta = {
    client: 'supabase-js',
    version: supabaseJsVersion,
    node: process.version,
    vsn: supabase.realtime.vsn ?? null,
    received: records.length,
    job_events: jobEvents,
    statuses,
    clock_offset_ms: { start: offsetAtStart, end: clockOffsetMs() },
  };
  writeFileSync(`${args.out}.meta.json`, `${JSON.stringify(meta)}\n`);
  try {
    await Promise.race([supabase.removeAllChannels(), new Promise((resolve) => setTimeout(resolve, 2000))]);
  } finally {
    // realtime-js leaves a timer behind disconnect(); exit instead of waiting for it.
    process.exit(code);
  }
}
process.on('SIGTERM', () => void finish(0));
process.on('SIGINT', () => void finish(0));
setTimeout(() => void finish(0), maxSeconds * 1000).unref();

// As the plugin does before joining: private joins are authorised with the token Realtime holds.
await supabase.realtime.setAuth();
// The plugin's channel: private, `job` and `job_event` handlers (job_event is only counted).
supabase
  .channel(args.topic, { config: { private: true } })
  .on('broadcast', { event: 'job' }, (message) => {
    const t = wallSeconds(); // first, before any other work in the callback
    const p = message.payload ?? {};
    records.push([String(p.id), String(p.status), p.updated_at ?? null, t]);
    if (records.length >= expect) void finish(0);
  })
  .on('broadcast', { event: 'job_event' }, () => {
    jobEvents += 1;
  })
  .subscribe((status, error) => {
    statuses.push(status);
    if (status === 'SUBSCRIBED') {
      process.stdout.write('SUBSCRIBED\n');
    } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
      console.error(`notify.mjs: ${status}${error ? `: ${error.message}` : ''}`);
      // Before the join this is fatal; after it realtime-js rejoins by itself.
      if (!statuses.includes('SUBSCRIBED')) void finish(1);
    }
  });
