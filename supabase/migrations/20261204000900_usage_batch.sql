-- record_usage_batch: many model calls' usage in one call (issue 14, fewer round trips per job).
--
-- The worker recorded each answered model call with its own record_usage call: 1.4 calls per
-- AI job, a quarter of its REST round trips. It now sends whatever calls answered while the
-- previous batch was in flight, for every job, in one call. Each item goes through
-- record_usage itself (its checks, its pricing, its insert), so the two cannot drift: a field it
-- refuses is a 400 naming the item (calls[i].field) and the whole batch records nothing; a job
-- that no longer exists (purged while the call was in flight) is answered in its row
-- (recorded = false) and the others are recorded.
--
-- A success carries its job's records in its complete_jobs item instead (20261123000500): one
-- transaction with the outcome, no call of their own. Both go through private.record_usage_items.

-- The items' checks and recording, shared with complete_jobs (whose items carry their job's
-- usage): `names` says what to call each item in a refusal (calls[3], completions[1].usage[0]).
create function private.record_usage_items(worker_id text, calls jsonb, names text[])
returns table (job_id uuid, recorded boolean, cost_usd numeric, reason text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  item jsonb;
  i integer := 1;
  k text;
  v_row public.usage_ledger;
  v_message text;
  v_hint text;
begin
  -- The JSON shape first (record_usage's own arguments are typed): keys, the job id, integers.
  for item in select e from jsonb_array_elements(calls) as t(e) loop
    perform private.check_batch_item(names[i], item, array['job_id', 'attempt', 'provider', 'model',
      'input_tokens', 'output_tokens', 'cached_tokens', 'images', 'latency_ms']);
    if coalesce(jsonb_typeof(item -> 'attempt'), 'null') = 'null' then
      perform private.raise_invalid(format('%s.attempt', names[i]), 'is required');
    end if;
    for k in select unnest(array['attempt', 'input_tokens', 'output_tokens', 'cached_tokens', 'images', 'latency_ms']) loop
      perform private.check_json_integer(format('%s.%s', names[i], k), item -> k);
    end loop;
    perform private.check_json_string(format('%s.provider', names[i]), item -> 'provider');
    perform private.check_json_string(format('%s.model', names[i]), item -> 'model');
    i := i + 1;
  end loop;

  i := 1;
  for item in select e from jsonb_array_elements(calls) as t(e) loop
    if not exists (select 1 from public.jobs j where j.id = (item ->> 'job_id')::uuid) then
      return query select (item ->> 'job_id')::uuid, false, null::numeric, 'job not found'::text;
    else
      begin
        v_row := public.record_usage(
          job_id => (item ->> 'job_id')::uuid, worker_id => record_usage_items.worker_id,
          attempt => (item ->> 'attempt')::integer, provider => item ->> 'provider', model => item ->> 'model',
          input_tokens => coalesce((item ->> 'input_tokens')::integer, 0),
          output_tokens => coalesce((item ->> 'output_tokens')::integer, 0),
          cached_tokens => coalesce((item ->> 'cached_tokens')::integer, 0),
          images => coalesce((item ->> 'images')::integer, 0),
          latency_ms => (item ->> 'latency_ms')::integer);
      exception when invalid_parameter_value then
        -- record_usage names the field; the batch names the item too. The batch records nothing.
        get stacked diagnostics v_message = message_text, v_hint = pg_exception_hint;
        raise exception '%.%', names[i], v_message using errcode = '22023', hint = v_hint;
      end;
      return query select v_row.job_id, true, v_row.cost_usd, null::text;
    end if;
    i := i + 1;
  end loop;
end;
$$;

create function public.record_usage_batch(worker_id text, calls jsonb)
returns table (job_id uuid, recorded boolean, cost_usd numeric, reason text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.check_worker_id(record_usage_batch.worker_id);
  perform private.check_batch('calls', calls, '{"job_id", "attempt", "provider", "model", ...}');
  return query select * from private.record_usage_items(record_usage_batch.worker_id, calls,
    array(select format('calls[%s]', n - 1) from generate_series(1, jsonb_array_length(calls)) as n));
end;
$$;

comment on function public.record_usage_batch(text, jsonb) is
  'Worker: record many model calls (record_usage for each, in order) in one call; a job that no '
  'longer exists is answered recorded = false, reason ''job not found''.';

select private.grant_calls(array['public.record_usage_batch(text, jsonb)'], 'service_role');
