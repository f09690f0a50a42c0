-- Claiming and leases (the worker side, service role): claim_jobs, renew_leases, release_jobs,
-- the lease reaper, and how workers learn that work is due: the jobs_queued NOTIFY (for workers
-- that talk to Postgres directly; the payload is small and public-safe) and next_job_run_at
-- (the earliest future run_at, so a worker arms one timer instead of polling).
--
-- Errors carry SQLSTATEs the REST layer maps to HTTP statuses, and messages that start with the
-- field or job at fault:
--   22023 invalid_parameter_value -> 400   bad argument ("kind: unknown job kind ...")
--   PT404                         -> 404   no such job (or not yours: existence is not leaked)
--   PT409                         -> 409   the job is not in a state that allows it (lease lost, finished)
--   PT413                         -> 413   payload larger than the kind allows
--   PT429                         -> 429   per-user rate limit; the hint says "retry after N seconds"
--   42501 insufficient_privilege  -> 401/403  no signed-in user
-- A raised error aborts the call's transaction, so a refused call changes nothing. All functions
-- are security definer with an empty search_path and fully qualified names. Who may call which
-- is granted once, in 20261123001000_jobs_grants.sql.

-- ---------------------------------------------------------------------------------------------
-- claim_jobs: due jobs by priority, then age, each (user, kind) group within its running cap
-- ---------------------------------------------------------------------------------------------
-- A (user, kind) group's first due jobs, at most `take` of them, in claim order: what a claim
-- holding the group's lock may take. Ordered on the queued index (jobs_queued_by_user_kind):
-- unordered, the planner read every job of the user instead.
create function private.claimable_jobs(p_user uuid, p_kind text, take integer) returns uuid[]
language plpgsql
stable
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  return array(
    select q.id from public.jobs q
    where q.status = 'queued' and q.run_at <= now() and q.user_id = p_user and q.kind = p_kind
    order by q.priority desc, q.run_at, q.id
    limit greatest(0, take));
end;
$$;

create function public.claim_jobs(
  worker_id text,
  kinds text[] default null,
  max_jobs integer default 1,
  lease_seconds integer default 60
) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
-- The walk reads due jobs in claim order and usually stops after a few rows: its cursor is planned
-- for that (index order), not for reading them all (a sort), or every claim would cost O(queue).
set cursor_tuple_fraction = 0.001
-- Generic plans, made once per session. A custom plan was made on every call (the limits and a
-- null kinds list fold into its estimate): ~0.5 of ~1.9 ms per draining call (bench/FIXES.md).
-- Every statement below is written so that its generic plan reads indexes only.
set plan_cache_mode = force_generic_plan
as $$
declare
  v_users uuid[] := '{}';
  v_kinds text[] := '{}';
  v_ids uuid[] := '{}';
  v_group uuid[];
  v_planned integer := 0;
  v_locked_any boolean := false;
  v_waiting_user uuid;
  v_waiting_kind text;
  v_cap integer;
  v_running integer;
  v_due_jobs refcursor;
  v_read integer := 0;
  v_cut boolean := false;
  g record;
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  if max_jobs is null or max_jobs not between 1 and 1000 then
    perform private.raise_invalid('max_jobs', format('must be between 1 and 1000, got %s', coalesce(max_jobs::text, 'null')));
  end if;
  perform private.check_kinds('kinds', kinds);

  -- Plan: one decision per (user, kind) group, in the order of each group's first due job (its
  -- head, in claim order). Usually the first few due jobs name enough groups: walk due jobs in
  -- claim order (index order, read lazily), at most 256 of them. Only if those did not fill the
  -- claim (groups at their running cap with long queues), list every group that has due jobs by
  -- its head: a skip scan of the queued index, O(groups), never O(queue) (a walk over all due
  -- jobs took 120 ms with 20,000 queued behind capped users: bench/FIXES.md). Groups of the first
  -- pass come first in both, and are skipped the second time.
  open v_due_jobs for
    select j.user_id, j.kind
    from public.jobs j
    where j.status = 'queued' and j.run_at <= now() and (claim_jobs.kinds is null or j.kind = any(claim_jobs.kinds))
    order by j.priority desc, j.run_at, j.id;
  for v_pass in 1 .. 2 loop
    loop
      exit when v_planned >= max_jobs;
      fetch v_due_jobs into g;
      exit when not found;
      v_read := v_read + 1;
      if v_pass = 1 and v_read > 256 then
        v_cut := true;
        exit;
      end if;
      -- A group seen before in this walk (the second pass lists each group once, without those).
      continue when (v_pass = 1 and exists (select 1 from unnest(v_users, v_kinds) p(u, k) where p.u = g.user_id and p.k = g.kind))
                 or (g.user_id = v_waiting_user and g.kind = v_waiting_kind);
      if not pg_try_advisory_xact_lock(private.lock_class('claim_group'), private.group_key(g.user_id, g.kind)) then
        if v_waiting_user is null then
          v_waiting_user := g.user_id;
          v_waiting_kind := g.kind;
        end if;
        continue;
      end if;
      v_locked_any := true;
      v_cap := private.running_cap(g.user_id, g.kind);
      select count(*) into v_running from public.jobs r
        where r.status = 'running' and r.user_id = g.user_id and r.kind = g.kind;
      v_group := private.claimable_jobs(g.user_id, g.kind, least(v_cap - v_running, max_jobs - v_planned));
      v_users := v_users || g.user_id;
      v_kinds := v_kinds || g.kind;
      v_ids := v_ids || v_group;
      v_planned := v_planned + cardinality(v_group);
    end loop;
    close v_due_jobs;
    exit when v_pass = 2 or not v_cut or v_planned >= max_jobs;
    open v_due_jobs for
      with recursive groups as (
        (select j.user_id, j.kind from public.jobs j where j.status = 'queued' order by j.user_id, j.kind limit 1)
        union all
        select n.user_id, n.kind
        from groups
        cross join lateral (
          select j.user_id, j.kind from public.jobs j
          where j.status = 'queued' and (j.user_id, j.kind) > (groups.user_id, groups.kind)
          order by j.user_id, j.kind
          limit 1
        ) n
      )
      select gr.user_id, gr.kind
      from groups gr
      cross join lateral (
        select j.priority, j.run_at, j.id from public.jobs j
        where j.user_id = gr.user_id and j.kind = gr.kind and j.status = 'queued' and j.run_at <= now()
        order by j.priority desc, j.run_at, j.id
        limit 1
      ) h
      where (claim_jobs.kinds is null or gr.kind = any(claim_jobs.kinds))
        and not exists (select 1 from unnest(v_users, v_kinds) p(u, k) where p.u = gr.user_id and p.k = gr.kind)
      order by h.priority desc, h.run_at, h.id;
  end loop;

  if not v_locked_any and v_waiting_user is not null then
    -- Everything due is being claimed by others right now: wait for the first group, then plan it.
    perform pg_advisory_xact_lock(private.lock_class('claim_group'), private.group_key(v_waiting_user, v_waiting_kind));
    v_cap := private.running_cap(v_waiting_user, v_waiting_kind);
    select count(*) into v_running from public.jobs r
      where r.status = 'running' and r.user_id = v_waiting_user and r.kind = v_waiting_kind;
    v_ids := private.claimable_jobs(v_waiting_user, v_waiting_kind, least(v_cap - v_running, max_jobs));
  end if;

  return query
  with locked as (
    -- The jobs chosen above, by primary key: their groups are locked by this transaction, so no
    -- other claim takes them meanwhile; a job cancelled or deferred since is left out.
    select j.id from public.jobs j
    where j.id = any(v_ids) and j.status = 'queued' and j.run_at <= now()
    for update skip locked
  ),
  claimed as (
    update public.jobs j
    set status = 'running',
        worker_id = claim_jobs.worker_id,
        attempts = j.attempts + 1,
        lease_expires_at = now() + make_interval(secs => lease_seconds),
        started_at = now(),
        updated_at = clock_timestamp()  -- set here, so jobs_touch_updated_at is skipped
    from locked
    where j.id = locked.id
    returning j.*
  )
  select * from claimed c order by c.priority desc, c.run_at, c.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- renew_leases / release_jobs: job_ids bounded the same way
-- ---------------------------------------------------------------------------------------------
create function public.renew_leases(worker_id text, job_ids uuid[], lease_seconds integer default 60)
returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Only leases still held (running, same worker, not yet expired) are extended.
  update public.jobs j
  set lease_expires_at = now() + make_interval(secs => lease_seconds)
  where j.id = any(job_ids) and j.status = 'running' and j.worker_id = renew_leases.worker_id
    and j.lease_expires_at >= now();
  -- Every listed job's current row, so the worker sees lost leases and cancel requests.
  return query select * from public.jobs j where j.id = any(job_ids) order by j.id;
end;
$$;

create function public.release_jobs(worker_id text, job_ids uuid[]) returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Graceful shutdown: back to the queue, attempt given back; a requested cancel wins.
  -- job_ids null releases every job the worker holds.
  return query
  with held as (
    select j.id from public.jobs j
    where j.status = 'running' and j.worker_id = release_jobs.worker_id
      and (job_ids is null or j.id = any(job_ids))
    for update
  ),
  released as (
    update public.jobs j
    set status = case when j.cancel_requested then 'cancelled' else 'queued' end,
        finished_at = case when j.cancel_requested then now() end,
        attempts = greatest(0, j.attempts - 1),
        lease_expires_at = null,
        worker_id = case when j.cancel_requested then j.worker_id end,
        run_at = now()
    from held where j.id = held.id
    returning j.*
  )
  select * from released r order by r.id;
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Maintenance: the reaper and retention (pg_cron runs them; the worker's sweep also reaps)
-- ---------------------------------------------------------------------------------------------
create function public.reap_expired_leases() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  -- A lease that ran out means the worker died or stalled: the attempt counts (it was taken at
  -- claim time); retry with backoff if attempts remain, otherwise fail.
  with expired as (
    select j.id from public.jobs j
    where j.status = 'running' and j.lease_expires_at < now()
    for update skip locked
  ),
  reaped as (
    update public.jobs j
    set status = case
          when j.cancel_requested then 'cancelled'
          when j.attempts < j.max_attempts then 'queued'
          else 'failed' end,
        error = jsonb_build_object(
          'type', 'lease_expired',
          'message', format('worker "%s" lost its lease (expired %s)', j.worker_id, j.lease_expires_at),
          'retryable', j.attempts < j.max_attempts,
          'attempt', j.attempts),
        run_at = case when j.attempts < j.max_attempts then now() + private.retry_delay(j.attempts, random()) else j.run_at end,
        finished_at = case when j.cancel_requested or j.attempts >= j.max_attempts then now() end,
        worker_id = case when j.cancel_requested or j.attempts >= j.max_attempts then j.worker_id end,
        lease_expires_at = null
    from expired where j.id = expired.id
    returning j.id
  )
  select count(*) into v_count from reaped;
  return v_count;
end;
$$;

create function private.notify_job_queued() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Fires for new queued jobs and for jobs coming back to the queue (retry backoff, deferral,
  -- release, reaped lease, a pipeline's dependency finishing); not for lease renewals.
  if new.status = 'queued' and (tg_op = 'INSERT' or old.status is distinct from 'queued' or old.run_at is distinct from new.run_at) then
    perform pg_notify('jobs_queued', json_build_object(
      'id', new.id, 'kind', new.kind, 'status', new.status, 'run_at', new.run_at)::text);
  end if;
  return null;
end;
$$;

create trigger jobs_notify_queued
  after insert or update of status, run_at on public.jobs
  for each row execute function private.notify_job_queued();

-- ---------------------------------------------------------------------------------------------
-- next_job_run_at: kinds checked as claim_jobs checks them (now plpgsql, same signature)
-- ---------------------------------------------------------------------------------------------
create function public.next_job_run_at(kinds text[] default null) returns timestamptz
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  perform private.check_kinds('kinds', kinds);
  return (
    select min(j.run_at)
    from public.jobs j
    where j.status = 'queued' and j.run_at > now() and (next_job_run_at.kinds is null or j.kind = any(next_job_run_at.kinds))
  );
end;
$$;

comment on function public.next_job_run_at(text[]) is
  'Earliest future run_at of a queued job (of the given kinds): when a worker should next try to claim.';
