-- Routed wake-ups: one new job wakes about one idle worker, not every worker (issue 14).
--
-- Before, every worker listened to every INSERT (Realtime Postgres Changes, or LISTEN
-- jobs_queued) and called claim_jobs on each: N idle workers made N claims and received N
-- messages per job. Now the database decides whom to wake:
--   * A worker whose claim came back short (it has free slots) is parked in
--     public.worker_wakeups, in the same transaction as the claim (claim_jobs_or_park).
--     The entry lapses at parked_until, so a worker that died is not woken for long.
--   * A statement that makes jobs queued (insert, retry, deferral, release, reaped lease, a
--     pipeline's dependency finishing) takes, per kind, parked workers (latest first, skip locked)
--     until their free slots cover the new jobs, removes them and wakes only them: a private
--     Realtime broadcast on topic worker:<worker_id> (event "wake") and a NOTIFY on
--     private.wake_channel(worker_id) for workers that talk to Postgres directly; a worker that
--     parks with wake_via gets only its own transport's message (see wake_via below).
--   * A job that stops running while a due job of the same user and kind waits for the running
--     cap wakes a parked worker too: that job became claimable without changing.
--   * Hand-offs: a worker that parks with handoffs => true is not only woken for a new due job:
--     the statement that queued it claims it for the worker first (claim_jobs, so caps, groups
--     and claim order hold as in any claim) and the message carries the claimed rows, which the
--     worker starts without a round trip. A worker that parked less than two seconds ago (so it
--     was alive then) stays parked after a hand-off that took every job it was for and left it
--     free slots (the message says "parked": true), so the next job is handed to it too, without
--     a claim of its own; otherwise it claims once after the message, as after a plain wake-up
--     (parking again, and the two-second rule below finds it dead if it does not). A worker that
--     dies while parked thus holds at most its free slots, handed within two seconds of its last
--     claim, as a worker that dies busy holds its running jobs.
--     A message that would not fit in a NOTIFY (8,000 bytes) goes without the rows: every
--     claim_jobs_or_park answers first with the jobs handed to the worker that it does not list
--     in handed_seen, so a lost or trimmed message costs a claim, never a job.
--   * A busy worker is not parked: it claims again when a slot frees; a parked worker does not
--     (whatever became claimable woke someone). The periodic sweep, the sweep after a reconnect
--     and the due timer stay as safety nets.
--
-- No wake-up is lost between "my claim found nothing" and "I am parked": the claim and the park
-- hold private.wakeup_gate in SHARE mode; a statement that queues jobs takes ROW EXCLUSIVE before
-- it looks for parked workers. The two modes conflict, each is compatible with itself: parkers do
-- not wait for each other, enqueuers do not wait for each other, and of a parker and an enqueuer
-- that overlap, either the claim sees the committed job or the enqueuer sees the committed park.
-- (This relies on READ COMMITTED, PostgREST's default: each statement takes a fresh snapshot.)

create table public.worker_wakeups (
  worker_id text primary key,
  kinds text[],  -- null: any kind
  free_slots integer not null check (free_slots between 0 and 1000),  -- not yet promised to new jobs
  parked_at timestamptz not null default now(),
  parked_until timestamptz not null,
  woken_at timestamptz,  -- sent a wake-up, has not claimed since
  handoff_lease_seconds integer,  -- null: wake it to claim; else claim for it, with this lease
  handed uuid[] not null default '{}',  -- jobs claimed for it since its last claim_jobs_or_park
  -- How its wake-up travels: 'realtime' (a broadcast on worker:<worker_id>), 'notify' (NOTIFY
  -- on private.wake_channel) or null (both: a worker that does not say). Each message the worker
  -- cannot receive is waste: a broadcast is a subtransaction and a realtime.messages row, and a
  -- NOTIFY makes the enqueue's commit take PostgreSQL's cluster-wide notify lock until its WAL
  -- is flushed (PreCommit_Notify in src/backend/commands/async.c), so concurrent enqueues that
  -- wake someone would commit one at a time (docs/hosted-platform.md).
  wake_via text check (wake_via in ('realtime', 'notify'))
);

comment on table public.worker_wakeups is
  'Idle workers waiting for a wake-up (claim_jobs_or_park); entries lapse at parked_until.';

-- A lock, never rows: see the header.
create table private.wakeup_gate ();

alter table public.worker_wakeups enable row level security;
alter table private.wakeup_gate enable row level security;
-- Only the functions below (security definer) read or write them.
revoke all on table public.worker_wakeups from anon, authenticated, service_role;
revoke all on table private.wakeup_gate from public;

-- The NOTIFY channel of one worker: an identifier (at most 63 bytes) whatever the worker_id.
create function private.wake_channel(worker_id text) returns text
language plpgsql immutable
set search_path = ''
as $$
begin
  return 'worker_wake_' || md5(worker_id);
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- claim_jobs_or_park: claim_jobs, and park the worker if it got fewer jobs than it asked for
-- ---------------------------------------------------------------------------------------------
create function public.claim_jobs_or_park(
  worker_id text,
  kinds text[] default null,
  max_jobs integer default 1,
  lease_seconds integer default 60,
  park_seconds integer default 60,
  handoffs boolean default false,
  handed_seen uuid[] default null,
  wake_via text default null
) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_claimed integer := 0;
  v_held integer := 0;
  v_unseen uuid[];
begin
  perform private.check_worker_id(worker_id);
  if park_seconds is null or park_seconds not between 1 and 86400 then
    perform private.raise_invalid('park_seconds',
      format('must be between 1 and 86400, got %s', coalesce(park_seconds::text, 'null')));
  end if;
  if handoffs is null then
    perform private.raise_invalid('handoffs', 'must be true or false, got null');
  end if;
  perform private.check_array('handed_seen', handed_seen, 1000);
  if wake_via not in ('realtime', 'notify') then
    perform private.raise_invalid('wake_via', format('must be "realtime", "notify" or null (both), got "%s"', wake_via));
  end if;
  lock table private.wakeup_gate in share mode;
  -- Jobs handed to this worker since its last claim whose message it has not seen (lost with a
  -- dropped connection, trimmed for size, or still on its way): they are its jobs already, so
  -- they come first and fill the slots it asks for. The gate orders this read against every
  -- hand-off: one committed before is listed here, one after finds the new entry.
  select coalesce(array_agg(h.id), '{}') into v_unseen
  from public.worker_wakeups w cross join lateral unnest(w.handed) h(id)
  where w.worker_id = claim_jobs_or_park.worker_id and h.id <> all(coalesce(handed_seen, '{}'));
  if cardinality(v_unseen) > 0 then
    return query select * from public.jobs j
      where j.id = any(v_unseen) and j.status = 'running' and j.worker_id = claim_jobs_or_park.worker_id
      order by j.priority desc, j.run_at, j.id;
    get diagnostics v_held = row_count;
  end if;
  if v_held < max_jobs or max_jobs is null then
    -- claim_jobs checks the other arguments; its error aborts the call before anything is parked.
    -- The claim is quiet (broadcast_job_change): the worker announces each job with its first report.
    perform set_config('jobs.quiet_claims', 'on', true);
    return query select * from public.claim_jobs(
      worker_id => claim_jobs_or_park.worker_id, kinds => kinds, max_jobs => max_jobs - v_held, lease_seconds => lease_seconds);
    get diagnostics v_claimed = row_count;
    perform set_config('jobs.quiet_claims', '', true);
  else
    -- Handed jobs filled the claim: the arguments are checked all the same.
    perform private.check_lease_seconds(lease_seconds);
    if max_jobs not between 1 and 1000 then
      perform private.raise_invalid('max_jobs', format('must be between 1 and 1000, got %s', max_jobs));
    end if;
    perform private.check_kinds('kinds', kinds);
  end if;
  v_claimed := v_claimed + v_held;
  if v_claimed < max_jobs then
    insert into public.worker_wakeups as w
      (worker_id, kinds, free_slots, parked_at, parked_until, handoff_lease_seconds, wake_via)
    values (claim_jobs_or_park.worker_id, kinds, max_jobs - v_claimed, now(), now() + make_interval(secs => park_seconds),
            case when handoffs then lease_seconds end, claim_jobs_or_park.wake_via)
    on conflict on constraint worker_wakeups_pkey do update
      set kinds = excluded.kinds, free_slots = excluded.free_slots,
          parked_at = excluded.parked_at, parked_until = excluded.parked_until, woken_at = null,
          handoff_lease_seconds = excluded.handoff_lease_seconds, handed = '{}', wake_via = excluded.wake_via;
  else
    delete from public.worker_wakeups w where w.worker_id = claim_jobs_or_park.worker_id;
  end if;
  -- Entries of workers that stopped renewing them: the table stays as small as the fleet.
  -- (A woken entry is kept until its worker claims: it still counts its promised slots.)
  delete from public.worker_wakeups w where w.parked_until < now() - interval '1 hour';
end;
$$;

comment on function public.claim_jobs_or_park(text, text[], integer, integer, integer, boolean, uuid[], text) is
  'claim_jobs without broadcasting queued -> running (the worker announces the job: report_progress_batch '
  '"started"); with fewer jobs than max_jobs, the worker is parked for park_seconds and the next '
  'job queued for its kinds wakes it (Realtime topic worker:<worker_id>, event wake; NOTIFY private.wake_channel), '
  'or with handoffs is claimed for it and sent in that message (wake_via: only the broadcast, "realtime", '
  'or only the NOTIFY, "notify"; null sends both). Jobs handed to it that are not in handed_seen '
  'come first in the answer.';

create function public.unpark_worker(worker_id text, handed_seen uuid[] default null) returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_unseen uuid[];
begin
  perform private.check_worker_id(worker_id);
  perform private.check_array('handed_seen', handed_seen, 1000);
  -- The row lock orders this against a hand-off: one committed before is in handed, one after
  -- finds no entry.
  with gone as (
    delete from public.worker_wakeups w where w.worker_id = unpark_worker.worker_id returning w.handed
  )
  select coalesce(array_agg(h.id), '{}') into v_unseen
  from gone cross join lateral unnest(gone.handed) h(id)
  where h.id <> all(coalesce(handed_seen, '{}'));
  -- Jobs handed to it that it will not run (it stopped before their message came): back to the
  -- queue with the attempt given back, as release_jobs does at any graceful stop.
  if cardinality(v_unseen) > 0 then
    perform public.release_jobs(worker_id => unpark_worker.worker_id, job_ids => v_unseen);
  end if;
end;
$$;

comment on function public.unpark_worker(text, uuid[]) is
  'A stopping worker: wake-ups go to others from now on; jobs handed to it that handed_seen does not list go back to the queue.';

-- ---------------------------------------------------------------------------------------------
-- The wake-up: per statement, per kind, as many parked workers as the new jobs need
-- ---------------------------------------------------------------------------------------------
-- Returns how many jobs it handed off (claimed for parked workers).
create function private.wake_parked_workers(p_kind text, p_jobs integer, p_due_at timestamptz, p_next_at timestamptz)
returns integer
language plpgsql
security definer
set search_path = ''
-- Runs in every enqueue: its reads of worker_wakeups (limit p_jobs) were planned on most calls.
set plan_cache_mode = force_generic_plan
as $$
declare
  w record;
  v_payload jsonb;
  v_message jsonb;
  v_text text;
  v_quiet text;
  v_jobs jsonb;
  v_ids uuid[];
  v_handed integer;
  v_parked boolean;
  v_covered integer := 0;
  v_handed_all integer := 0;
  v_told text[] := '{}';
begin
  -- Before reading parked workers: a claim that is parking now either sees these committed jobs
  -- or has committed its entry (see the header). Taken again by a later call: a no-op.
  lock table private.wakeup_gate in row exclusive mode;
  -- The hint a worker reads: claim now (run_at due) and/or arm a timer (next_at, or run_at later).
  v_payload := jsonb_build_object('kind', p_kind, 'status', 'queued', 'run_at', coalesce(p_due_at, p_next_at))
    || case when p_due_at is not null and p_next_at is not null then jsonb_build_object('next_at', p_next_at) else '{}' end;
  -- A worker woken moments ago that has not claimed yet still has free slots promised to no job:
  -- its coming claim will see these jobs too (it takes the gate after this statement's commit),
  -- so it takes them without another message or another worker's claim. After two seconds
  -- without its claim it counts as unresponsive: new jobs wake others. It is not preferred over
  -- workers parked after it, though: a dead worker woken because nobody else was parked yet must
  -- not absorb the jobs that follow while a live worker has parked since (a job then waited for
  -- the sweep: tests/sql/test_wakeups.py).
  for w in
    with candidates as (
      select c.worker_id, c.free_slots, c.parked_at, c.woken_at is not null as woken, c.handoff_lease_seconds,
             c.wake_via
      from public.worker_wakeups c
      where c.parked_until > now() and c.free_slots > 0 and (c.kinds is null or p_kind = any(c.kinds))
        and (c.woken_at is null or c.woken_at > now() - interval '2 seconds')
      order by c.parked_at desc, c.worker_id
      limit p_jobs
      for update skip locked
    ),
    chosen as (
      -- The one parked last first, until their free slots cover the new jobs. A
      -- live worker parks again after every claim: the latest entries are the likeliest alive,
      -- and one that died sinks below them until it lapses.
      select c.*, coalesce(sum(c.free_slots) over (
        order by c.parked_at desc, c.worker_id rows between unbounded preceding and 1 preceding), 0) as before
      from candidates c
    )
    select c.worker_id, c.woken, c.handoff_lease_seconds, c.free_slots, c.parked_at, c.wake_via,
           least(c.free_slots, p_jobs - c.before)::integer as slots
    from chosen c
    where c.before < p_jobs
    order by c.parked_at desc, c.worker_id
  loop
    v_covered := v_covered + w.slots;
    v_told := v_told || w.worker_id;
    v_jobs := null;
    v_ids := '{}';
    v_handed := 0;
    v_parked := false;
    if p_due_at is not null and w.handoff_lease_seconds is not null and not w.woken then
      -- Hand-off: claim for the worker now, in this transaction, as its own claim would right
      -- after a wake-up (same function: caps, group locks, claim order), quietly (the worker
      -- announces each job). It may take an earlier due job of the kind instead of a new one.
      v_quiet := current_setting('jobs.quiet_claims', true);
      perform set_config('jobs.quiet_claims', 'on', true);
      select coalesce(jsonb_agg(to_jsonb(c)), '[]'), coalesce(array_agg(c.id), '{}'), count(*)
        into v_jobs, v_ids, v_handed
        from public.claim_jobs(worker_id => w.worker_id, kinds => array[p_kind], max_jobs => w.slots,
                               lease_seconds => w.handoff_lease_seconds) c;
      perform set_config('jobs.quiet_claims', coalesce(v_quiet, ''), true);
      v_handed_all := v_handed_all + v_handed;
      -- It stays parked (no claim owed) when the hand-off did all a claim would have: it took
      -- every job it was for, left no due job of the kind behind (one a user's cap holds back,
      -- an earlier one it took instead, the rest of a batch for the next worker: the claim
      -- takes those), and the worker keeps free slots; and only if it parked less than two
      -- seconds ago, so a worker that died while parked gets this for two seconds at most.
      -- The due-job test walks the queued index in claim order (a scalar subquery: EXISTS would
      -- drop the ORDER BY), so it reads queued jobs at most, never the table's history: as EXISTS,
      -- a generic plan read the whole table and a custom one a whole index (issue 14).
      v_parked := v_handed = w.slots and w.free_slots > v_handed and w.parked_at > now() - interval '2 seconds'
        and (select q.id from public.jobs q where q.status = 'queued' and q.kind = p_kind and q.run_at <= now()
             order by q.priority desc, q.run_at, q.id limit 1) is null;
    end if;
    if not w.woken then
      -- The rows as one JSON text, not as nested JSON: supabase-py's Realtime client checks every
      -- node of a broadcast against a union of nine message models (0.64 ms for one 5 KB row,
      -- 0.09 ms for the same row as a string, then json.loads; bench/FIXES.md).
      v_message := v_payload
        || case when v_handed > 0 then jsonb_build_object('jobs', v_jobs::text) else '{}' end
        || case when v_parked then jsonb_build_object('parked', true) else '{}' end;
      v_text := v_message::text;
      if octet_length(v_text) >= 8000 then
        -- NOTIFY takes less than 8,000 bytes: a longer message goes without its rows, and the
        -- worker's claim returns them (handed, not in handed_seen).
        v_message := v_payload;
        v_text := v_payload::text;
        v_parked := false;
      end if;
    end if;
    -- Unless it stays parked, the worker is now woken: it claims once more (after this
    -- commit), which parks it again with the slots it really has free, takes what a hand-off
    -- could not and whatever is queued meanwhile for the slots promised here, and shows it is
    -- alive: a worker that does not claim within two seconds gets nothing more (it may have
    -- died while parked).
    update public.worker_wakeups d
    set woken_at = case when v_parked then d.woken_at else coalesce(d.woken_at, now()) end,
        free_slots = d.free_slots - w.slots,
        handed = d.handed || v_ids
    where d.worker_id = w.worker_id;
    continue when w.woken;  -- already told
    if w.wake_via is distinct from 'notify' then
      perform realtime.send(v_message, 'wake', 'worker:' || w.worker_id, true);
    end if;
    if w.wake_via is distinct from 'realtime' then
      perform pg_notify(private.wake_channel(w.worker_id), v_text);
    end if;
  end loop;
  if v_covered < p_jobs then
    -- Every parked worker this statement could lock is taken. Any other one is locked by a
    -- statement waking it right now, which cannot see these jobs (not committed) and may keep
    -- it parked: wake it to claim, without its entry. Its claim waits at the gate for this
    -- statement's commit, so it sees the jobs (before hand-offs could keep a worker parked, its
    -- claim after every message covered this). The same test of an entry as the candidates'
    -- above, written out: a helper function would cost a call per row of every enqueue.
    for w in
      select c.worker_id, c.wake_via from public.worker_wakeups c
      where c.parked_until > now() and c.free_slots > 0 and (c.kinds is null or p_kind = any(c.kinds))
        and (c.woken_at is null or c.woken_at > now() - interval '2 seconds') and c.worker_id <> all(v_told)
      order by c.parked_at desc, c.worker_id
      limit p_jobs - v_covered
    loop
      if w.wake_via is distinct from 'notify' then
        perform realtime.send(v_payload, 'wake', 'worker:' || w.worker_id, true);
      end if;
      if w.wake_via is distinct from 'realtime' then
        perform pg_notify(private.wake_channel(w.worker_id), v_payload::text);
      end if;
    end loop;
  end if;
  return v_handed_all;
end;
$$;

create function private.wake_for_queued_jobs() returns trigger
language plpgsql
security definer
set search_path = ''
-- Runs after every insert and update of jobs: plans of its transition-table reads kept too.
set plan_cache_mode = force_generic_plan
as $$
declare
  g record;
  v_handed integer := 0;
  v_finished uuid[];
  v_succeeded uuid[];
begin
  -- Per kind, the jobs that became queued in this statement: new ones, and ones that came back
  -- or moved in time. Claims, renewals and progress find none: no lock, no wake-up
  -- (wake_parked_workers takes the gate only when it runs); a statement that finishes jobs takes
  -- the gate once, below, to see whether anybody is parked.
  if tg_op = 'INSERT' then
    for g in
      select n.kind, count(*)::integer as jobs,
             min(n.run_at) filter (where n.run_at <= now()) as due_at,
             min(n.run_at) filter (where n.run_at > now()) as next_at
      from new_rows n where n.status = 'queued' group by n.kind
    loop
      v_handed := v_handed + private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
    end loop;
    -- Then each new job's message to its user (the row trigger announces updates only), except
    -- for a job a hand-off just claimed: the client's first state is already "queued", the claim
    -- is quiet and the worker's first report announces the job running, so a job that starts at
    -- once costs one message less against the project's Realtime quota (issue 14). A job left
    -- queued (no worker parked, a user's cap, a hand-off that took an earlier job) is announced.
    perform private.send_messages('job', array_agg('jobs:' || n.user_id::text),
                                   array_agg(private.job_broadcast_payload(n::public.jobs)))
    from new_rows n
    where v_handed = 0
       or n.status <> 'queued'
       or not exists (select 1 from public.jobs j where j.id = n.id and j.status = 'running');
    return null;
  end if;
  -- A statement that leaves every row it touched running (a claim, a progress report, a lease
  -- renewal) can neither queue a job nor free a place under a cap: one pass over its new rows
  -- instead of the two joins below (bench/FIXES.md, "claims that could not wake anyone").
  if not exists (select 1 from new_rows n where n.status <> 'running') then
    return null;
  end if;
  -- What the jobs this statement finished set off, once per statement (row triggers made a
  -- PL/pgSQL call per job, and a statement trigger of their own would run for every update of
  -- jobs: bench/FIXES.md): results cached for their kind, waiting dependents moved on.
  select coalesce(array_agg(n.id) filter (where n.status = 'succeeded' and not n.cached), '{}'),
         coalesce(array_agg(n.id), '{}')
    into v_succeeded, v_finished
  from new_rows n join old_rows o on o.id = n.id
  where n.status in ('succeeded', 'failed', 'cancelled') and o.status is distinct from n.status;
  if cardinality(v_succeeded) > 0 then
    perform private.store_cached_results(v_succeeded);
  end if;
  if cardinality(v_finished) > 0 then
    perform private.advance_dependents(v_finished);
  end if;
  -- Nobody to wake: no parked worker with free slots that still counts as alive (the candidates'
  -- test of wake_parked_workers, which does nothing without one). Read after taking the gate, as
  -- wake_parked_workers reads: a claim parking right now has either committed its entry (seen
  -- here) or waits for this statement's commit and then sees its jobs. A draining worker never
  -- parks, so its acknowledgements skip the probes below (bench/FIXES.md).
  lock table private.wakeup_gate in row exclusive mode;
  if not exists (select 1 from public.worker_wakeups c
                 where c.parked_until > now() and c.free_slots > 0
                   and (c.woken_at is null or c.woken_at > now() - interval '2 seconds')) then
    return null;
  end if;
  for g in
    select n.kind, count(*)::integer as jobs,
           min(n.run_at) filter (where n.run_at <= now()) as due_at,
           min(n.run_at) filter (where n.run_at > now()) as next_at
    from new_rows n join old_rows o on o.id = n.id
    where n.status = 'queued' and (o.status <> 'queued' or o.run_at is distinct from n.run_at)
    group by n.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
  end loop;
  -- A job that stops running frees a place under its user's running cap: a due job of that user
  -- and kind that waited for it is claimable now, though nothing about it changed.
  -- One index probe per (user, kind), in the queued index's order: a probe per row, planned for
  -- the transition table's unknown size, read every job of the user (bench/FIXES.md).
  for g in
    select f.kind, sum(f.jobs)::integer as jobs
    from (
      select n.user_id, n.kind, count(*) as jobs
      from new_rows n join old_rows o on o.id = n.id
      where o.status = 'running' and n.status not in ('running', 'queued')
      group by n.user_id, n.kind
    ) f
    cross join lateral (
      select 1 from public.jobs q
      where q.user_id = f.user_id and q.kind = f.kind and q.status = 'queued' and q.run_at <= now()
      order by q.priority desc, q.run_at, q.id
      limit 1
    ) due
    group by f.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, now(), null);
  end loop;
  return null;
end;
$$;

create trigger jobs_wake_on_insert
  after insert on public.jobs
  referencing new table as new_rows
  for each statement execute function private.wake_for_queued_jobs();

create trigger jobs_wake_on_update
  after update on public.jobs
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.wake_for_queued_jobs();

-- A new job's message now comes from jobs_wake_on_insert, after its hand-off (above).
-- Its WHEN repeats the function's early returns (a lease renewal alone, a job its calling function
-- announces itself, a worker's quiet claim): most updates on the hot path are one of them, and a
-- WHEN is evaluated without entering PL/pgSQL (bench/FIXES.md, "two costs on every update of a job").
-- The quiet test is private.is_quiet's expression written out: calling that plpgsql function here
-- would cost the call the WHEN saves, and a SQL function (inlined) would need a mutable search_path.
drop trigger jobs_broadcast_change on public.jobs;
create trigger jobs_broadcast_change
  after update on public.jobs
  for each row
  when ((old.status, old.progress, old.attempts, old.error, old.cancel_requested, old.result, old.run_at)
        is distinct from
        (new.status, new.progress, new.attempts, new.error, new.cancel_requested, new.result, new.run_at)
        and not coalesce(new.id::text = any(string_to_array(nullif(current_setting('jobs.quiet_broadcasts', true), ''), ',')),
                         false)
        and not (old.status = 'queued' and new.status = 'running'
                 and coalesce(current_setting('jobs.quiet_claims', true) = 'on', false)))
  execute function private.broadcast_job_change();

-- The per-row NOTIFY to every listener is replaced by the routed wake-up above.
drop trigger jobs_notify_queued on public.jobs;
drop function private.notify_job_queued();

-- A service-role session may join its own worker:<id> topic: the service role bypasses RLS on
-- realtime.messages, so no policy is added (users cannot join or send on worker topics).

select private.grant_calls(array[
  'public.claim_jobs_or_park(text, text[], integer, integer, integer, boolean, uuid[], text)',
  'public.unpark_worker(text, uuid[])'
], 'service_role');

revoke all on all functions in schema private from public, anon, authenticated;
