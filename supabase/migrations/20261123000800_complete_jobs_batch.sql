-- complete_jobs: acknowledge many finished jobs in one call.
--
-- Why: with short jobs a worker spends most of its time on one complete_job round trip per
-- job (measured in bench/: the drain rate was bound by it). The worker now sends the successes
-- that finish while a previous acknowledgement is in flight as one batch, so a lone job is
-- still acknowledged at once and a busy worker pays one round trip per batch.
--
-- Contract: the input is validated as a whole first (any bad item: 22023 naming the item and
-- field, nothing changes). Then each job is completed exactly as complete_job would, except that
-- a job this worker no longer holds is reported in its row (completed = false, reason) instead
-- of failing the whole batch: another worker's reaper or a cancel must not undo the rest.
-- Rows are locked in id order, so two batches never deadlock each other.

create function public.complete_jobs(worker_id text, completions jsonb)
returns table (job_id uuid, completed boolean, reason text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  n integer;
  item jsonb;
  i integer := 0;
  k text;
  v_id text;
  v_result jsonb;
begin
  perform private.check_worker_id(complete_jobs.worker_id);
  if completions is null or jsonb_typeof(completions) <> 'array' then
    perform private.raise_invalid('completions',
      format('must be a JSON array of {"job_id", "result"} objects, got %s', coalesce(jsonb_typeof(completions), 'null')));
  end if;
  n := jsonb_array_length(completions);
  if n = 0 or n > 1000 then
    perform private.raise_invalid('completions', format('must hold 1 to 1000 items, got %s', n));
  end if;
  for item in select e from jsonb_array_elements(completions) as t(e) loop
    if jsonb_typeof(item) <> 'object' then
      perform private.raise_invalid(format('completions[%s]', i), format('must be an object, got %s', jsonb_typeof(item)));
    end if;
    for k in select jsonb_object_keys(item) loop
      if k not in ('job_id', 'result') then
        perform private.raise_invalid(format('completions[%s]', i), format('unknown key "%s"; allowed: job_id, result', k));
      end if;
    end loop;
    v_id := item ->> 'job_id';
    if jsonb_typeof(item -> 'job_id') is distinct from 'string'
       or v_id !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      perform private.raise_invalid(format('completions[%s].job_id', i), 'must be a UUID string');
    end if;
    v_result := item -> 'result';
    if v_result is null or jsonb_typeof(v_result) not in ('object', 'array') then
      perform private.raise_invalid(format('completions[%s].result', i),
        format('must be a JSON object or array, got %s', coalesce(jsonb_typeof(v_result), 'nothing')));
    end if;
    if octet_length(v_result::text) > 1048576 then
      perform private.raise_invalid(format('completions[%s].result', i),
        format('%s bytes exceeds 1 MiB; store large outputs in Storage', octet_length(v_result::text)));
    end if;
    i := i + 1;
  end loop;
  if (select count(distinct (e ->> 'job_id')::uuid) from jsonb_array_elements(completions) as t(e)) <> n then
    perform private.raise_invalid('completions', 'lists a job_id more than once');
  end if;

  -- Lock first (in id order), then update in a new statement that sees the locked rows' latest versions.
  perform 1 from public.jobs j
  where j.id in (select (e ->> 'job_id')::uuid from jsonb_array_elements(completions) as t(e))
  order by j.id
  for update;

  return query
  with input as (
    select (e ->> 'job_id')::uuid as id, e -> 'result' as result, ord
    from jsonb_array_elements(completions) with ordinality as t(e, ord)
  ),
  done as (
    update public.jobs j
    set status = 'succeeded', result = input.result, finished_at = now(), lease_expires_at = null,
        error = null, progress = jsonb_build_object('percent', 100, 'message', coalesce(j.progress ->> 'message', 'done'))
    from input
    where j.id = input.id and j.status = 'running' and j.worker_id = complete_jobs.worker_id
      and j.lease_expires_at >= now()
    returning j.id
  )
  select input.id, done.id is not null,
    case
      when done.id is not null then null
      when j.id is null then 'not found'
      when j.status <> 'running' or j.worker_id is distinct from complete_jobs.worker_id then
        format('not held by worker "%s" (status %s, held by %s)', complete_jobs.worker_id, j.status,
               coalesce('"' || j.worker_id || '"', 'no worker'))
      else format('the lease expired at %s', j.lease_expires_at)
    end
  from input
  left join public.jobs j on j.id = input.id  -- this statement's snapshot: the rows before the update
  left join done on done.id = input.id
  order by input.ord;
end;
$$;

revoke all on function public.complete_jobs(text, jsonb) from public, anon, authenticated;
grant execute on function public.complete_jobs(text, jsonb) to service_role;
