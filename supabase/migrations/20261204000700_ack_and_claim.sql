-- complete_and_claim: acknowledge finished jobs and claim the next ones in one statement (one
-- round trip per batch for a draining worker instead of two, as River and pgqueuer fetch with
-- the ack).
--
-- It is public.complete_jobs followed by public.claim_jobs in the same transaction, calling both
-- (their validation, locking, caps and per-row outcomes are theirs, and stay defined once): the
-- completions are passed through untouched, so whatever item format complete_jobs accepts, this
-- accepts. An invalid argument of either part raises 22023 naming the field, and the whole call
-- changes nothing (a refused claim does not leave the acknowledgements half done).
--
-- The claim is quiet, as claim_jobs_or_park's (no queued -> running broadcast): the worker
-- announces each claimed job with its first report_progress_batch ("started"), one message.
--
-- The answer is one table for both parts, told apart by ``entry``:
--   'completed' rows: job_id, completed, reason (complete_jobs' row for each completion, in order)
--   'claimed' rows:   job_id and job, the claimed public.jobs row as JSON text, in claim order.
-- The row is text, not jsonb, so a client decodes each claimed row on its own: a row it cannot
-- read (JSON nested deeper than its parser goes, say) fails that job alone, as with claim_jobs.

create function public.complete_and_claim(
  worker_id text,
  completions jsonb,
  kinds text[] default null,
  max_jobs integer default 1,
  lease_seconds integer default 60
) returns table (entry text, job_id uuid, completed boolean, reason text, job text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Checked before any work, so a bad claim argument costs no acknowledgement work; claim_jobs
  -- checks them again (cheap) and stays the definition.
  perform private.check_worker_id(complete_and_claim.worker_id);
  perform private.check_lease_seconds(complete_and_claim.lease_seconds);
  if complete_and_claim.max_jobs is null or complete_and_claim.max_jobs not between 1 and 1000 then
    perform private.raise_invalid('max_jobs',
      format('must be between 1 and 1000, got %s', coalesce(complete_and_claim.max_jobs::text, 'null')));
  end if;
  perform private.check_kinds('kinds', complete_and_claim.kinds);

  return query
  select 'completed'::text, c.job_id, c.completed, c.reason, null::text
  from public.complete_jobs(complete_and_claim.worker_id, complete_and_claim.completions) as c;

  -- A quiet claim, as claim_jobs_or_park's: the worker announces each job with its first report.
  perform set_config('jobs.quiet_claims', 'on', true);
  return query
  select 'claimed'::text, j.id, null::boolean, null::text, to_jsonb(j)::text
  from public.claim_jobs(complete_and_claim.worker_id, complete_and_claim.kinds, complete_and_claim.max_jobs,
                         complete_and_claim.lease_seconds) as j;
  perform set_config('jobs.quiet_claims', '', true);
end;
$$;

select private.grant_calls(array['public.complete_and_claim(text, jsonb, text[], integer, integer)'], 'service_role');
