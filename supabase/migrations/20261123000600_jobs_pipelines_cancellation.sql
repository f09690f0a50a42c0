-- Pipelines and cancellation: cancel_job (the owner), and the trigger that releases or cancels
-- the jobs waiting on one that just finished (depends_on).
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
-- cancel_job: the owner cancels a job
-- ---------------------------------------------------------------------------------------------
create function public.cancel_job(job_id uuid) returns public.jobs
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  j public.jobs;
begin
  if v_uid is null then
    raise exception 'cancel_job: no signed-in user in the request' using errcode = '42501';
  end if;
  if job_id is null then
    perform private.raise_invalid('job_id', 'must not be null');
  end if;
  select * into j from public.jobs where id = cancel_job.job_id and user_id = v_uid for update;
  if not found then
    raise exception 'job_id: job % not found', cancel_job.job_id using errcode = 'PT404';
  end if;

  if j.status in ('queued', 'waiting') then
    update public.jobs
    set status = 'cancelled', cancel_requested = true, finished_at = now(), lease_expires_at = null,
        error = jsonb_build_object('type', 'cancelled', 'message', 'cancelled by the user',
                                   'retryable', false, 'attempt', attempts)
    where id = j.id
    returning * into j;
  elsif j.status = 'running' then
    -- The worker sees the flag on its next heartbeat, stops, and records the cancellation.
    if not j.cancel_requested then
      update public.jobs set cancel_requested = true where id = j.id returning * into j;
    end if;
  elsif j.status in ('succeeded', 'failed') then
    raise exception 'job_id: job % already %; nothing to cancel', j.id, j.status using errcode = 'PT409';
  end if;
  return j;  -- cancelling a cancelled job is a no-op
end;
$$;

-- ---------------------------------------------------------------------------------------------
-- Pipelines: when a job finishes, its waiting dependents move on
-- ---------------------------------------------------------------------------------------------
-- ``finished``: the jobs one statement moved to succeeded, failed or cancelled. Called once per
-- such statement by the jobs' statement trigger (jobs_wake_on_update, 20261204000600_worker_wakeups.sql),
-- not by a row trigger: that was a PL/pgSQL call for every finished job (bench/FIXES.md).
create function private.advance_dependents(finished uuid[]) returns void
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  -- Most jobs have no dependents: a probe of the (small) waiting index, and no UPDATE statement
  -- (with its statement triggers) for them.
  if not exists (select 1 from public.jobs d where d.depends_on = any(finished) and d.status = 'waiting') then
    return;
  end if;
  update public.jobs d set status = 'queued', run_at = greatest(d.run_at, now())
  from public.jobs p
  where p.id = any(finished) and p.status = 'succeeded' and d.depends_on = p.id and d.status = 'waiting';
  -- failed or cancelled: dependents are cancelled, which cascades down the pipeline (this
  -- statement finishes them, and its trigger calls this function for them).
  update public.jobs d
  set status = 'cancelled', finished_at = now(),
      error = jsonb_build_object('type', 'dependency_failed', 'retryable', false, 'attempt', 0,
                                 'message', format('dependency %s %s', p.id, p.status))
  from public.jobs p
  where p.id = any(finished) and p.status in ('failed', 'cancelled') and d.depends_on = p.id
    and d.status = 'waiting';
end;
$$;
