-- report_and_complete: progress reports and acknowledgements in one statement (issue 14).
--
-- A worker under load sent report_progress_batch about once per job (each job's first step,
-- held for its pacing, went out on the next beat) and complete_jobs about once per job (each
-- success at once): two round trips per job, a few milliseconds apart for different jobs. An
-- acknowledgement now carries the reports that are due by then (bench/FIXES.md, "reports ride
-- with the acknowledgements").
--
-- It is public.report_progress_batch followed by public.complete_jobs in the same transaction,
-- calling both (their validation, per-row outcomes, events and broadcasts stay defined once):
-- the reports are applied first, so a job's report and its completion in one call keep their
-- order. An invalid argument of either part raises 22023 naming the field (reports[i]... or
-- completions[i]...), and the whole call changes nothing.
--
-- Every listed job is locked first, in id order: the two parts lock their own jobs in id order,
-- one after the other, which could take a higher id before a lower one and deadlock against
-- renew_leases or another batch (tests/sql/test_lock_order.py).
--
-- The answer is one table for both parts, told apart by ``entry``:
--   'reported' rows:  job_id, recorded, reason (report_progress_batch's row for each job, in order)
--   'completed' rows: job_id, recorded, reason (complete_jobs' row for each completion, in order)

create function public.report_and_complete(worker_id text, reports jsonb, completions jsonb)
returns table (entry text, job_id uuid, recorded boolean, reason text)
language plpgsql
security definer
set search_path = ''
set plan_cache_mode = force_generic_plan
as $$
begin
  -- The shapes first (each part checks its items again and stays the definition), so a call
  -- with a malformed part locks nothing.
  perform private.check_worker_id(report_and_complete.worker_id);
  perform private.check_batch('reports', report_and_complete.reports, '{"job_id", "percent", "message", "partial", "started"}');
  perform private.check_batch('completions', report_and_complete.completions, '{"job_id", "result"}');

  -- An item whose job_id is not a UUID is left to its part, which names it.
  perform private.lock_held_jobs(
    array(select (e ->> 'job_id')::uuid
          from (select e from jsonb_array_elements(report_and_complete.reports) as r(e)
                union all
                select e from jsonb_array_elements(report_and_complete.completions) as c(e)) as t
          where jsonb_typeof(e -> 'job_id') = 'string'
            and (e ->> 'job_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    report_and_complete.worker_id);

  return query
  select 'reported'::text, r.job_id, r.accepted, r.reason
  from public.report_progress_batch(report_and_complete.worker_id, report_and_complete.reports) as r;

  return query
  select 'completed'::text, c.job_id, c.completed, c.reason
  from public.complete_jobs(report_and_complete.worker_id, report_and_complete.completions) as c;
end;
$$;

select private.grant_calls(array['public.report_and_complete(text, jsonb, jsonb)'], 'service_role');
