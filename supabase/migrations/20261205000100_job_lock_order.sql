-- Every call that locks several jobs takes their rows in id order.
--
-- complete_jobs and report_progress_batch lock the jobs they name in id order
-- (private.lock_held_jobs). Three calls did not: renew_leases and release_jobs locked rows in
-- the order their scan met them (storage order for a bitmap or sequential scan), and
-- record_usage_batch in the order of its items (each usage row's foreign key takes a key-share
-- lock on its job). Any of them next to a progress batch or an acknowledgement of the same
-- worker could deadlock: PostgreSQL finds it only after deadlock_timeout (1 s), and meanwhile
-- both transactions hold every other row they locked, so the reports and outcomes of every job
-- of the worker waited up to a second (bench/FIXES.md, "the progress beat").
-- tests/sql/test_lock_order.py checks the order of all five calls.

create or replace function public.renew_leases(worker_id text, job_ids uuid[], lease_seconds integer default 60)
returns setof public.jobs
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(worker_id);
  perform private.check_lease_seconds(lease_seconds);
  perform private.check_array('job_ids', job_ids, 1000);
  -- Only leases still held (running, same worker, not yet expired) are extended; their rows are
  -- locked in id order first (the lock the update itself takes), as release_jobs does.
  with held as (
    select j.id from public.jobs j
    where j.id = any(job_ids) and j.status = 'running' and j.worker_id = renew_leases.worker_id
    order by j.id
    for no key update
  )
  update public.jobs j
  set lease_expires_at = now() + make_interval(secs => lease_seconds), updated_at = clock_timestamp()
  from held
  where j.id = held.id and j.lease_expires_at >= now();
  -- Every listed job's current row, so the worker sees lost leases and cancel requests.
  return query select * from public.jobs j where j.id = any(job_ids) order by j.id;
end;
$$;

create or replace function public.release_jobs(worker_id text, job_ids uuid[]) returns setof public.jobs
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
    order by j.id
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

create or replace function public.record_usage_batch(worker_id text, calls jsonb)
returns table (job_id uuid, recorded boolean, cost_usd numeric, reason text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(record_usage_batch.worker_id);
  perform private.check_batch('calls', calls, '{"job_id", "attempt", "provider", "model", ...}');
  -- The key-share locks of the usage rows' foreign keys, taken first in id order. An item whose
  -- job_id is not a UUID locks nothing here: record_usage_items refuses it by name.
  perform 1 from public.jobs j
  where j.id = any(array(
    select (t.e ->> 'job_id')::uuid from jsonb_array_elements(calls) as t(e)
    where jsonb_typeof(t.e -> 'job_id') = 'string'
      and t.e ->> 'job_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'))
  order by j.id
  for key share;
  return query select * from private.record_usage_items(record_usage_batch.worker_id, calls,
    array(select format('calls[%s]', n - 1) from generate_series(1, jsonb_array_length(calls)) as n));
end;
$$;
