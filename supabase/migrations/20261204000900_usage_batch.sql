-- record_usage_batch: many model calls' usage in one call (issue 14, fewer round trips per job).
--
-- The worker recorded each answered model call with its own record_usage call: 1.4 calls per
-- AI job, a quarter of its REST round trips. It now sends whatever calls answered while the
-- previous batch was in flight, for every job, in one call. Items are checked and priced as
-- record_usage does: all in one INSERT when every item is plainly valid (record_usage's pricing
-- is private.usage_cost, shared; tests/sql/test_usage_batch.py compares the two at every edge),
-- else each through record_usage itself. A field it refuses is a 400 naming the item
-- (calls[i].field) and the whole batch records nothing; a job
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
  -- Every item plainly valid (the checks below and record_usage's, as one test; anything unusual,
  -- say 1.0 for an integer, fails it) and its job there: all recorded in one INSERT, priced by
  -- record_usage's formula, without a call and a subtransaction per item (~0.5 ms an item:
  -- bench/FIXES.md, "usage in one statement"). Otherwise the items are walked one by one below,
  -- which records exactly the same rows or names the first fault.
  if jsonb_array_length(calls) > 0 and not exists (
    select 1
    from jsonb_array_elements(calls) as t(e)
    cross join lateral (
      -- CASE, not AND, guards each cast: PostgreSQL may evaluate the operands of AND in any order.
      select case
        when jsonb_typeof(t.e) = 'object'
             and (t.e - '{job_id,attempt,provider,model,input_tokens,output_tokens,cached_tokens,images,latency_ms}'::text[]) = '{}'::jsonb
             and jsonb_typeof(t.e -> 'job_id') = 'string'
             and (t.e ->> 'job_id') ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
             and jsonb_typeof(t.e -> 'attempt') = 'number' and (t.e ->> 'attempt') ~ '^[0-9]{1,9}$'
             and jsonb_typeof(t.e -> 'provider') = 'string' and jsonb_typeof(t.e -> 'model') = 'string'
             -- Each count absent, null, or a JSON number written as plain digits (a string of
             -- digits reads the same through ->>, so its type is checked too).
             and not exists (
               select 1 from unnest('{input_tokens,output_tokens,cached_tokens,images,latency_ms}'::text[]) as c(k)
               where coalesce(jsonb_typeof(t.e -> c.k), 'null') not in ('null', 'number')
                  or coalesce(t.e ->> c.k, '0') !~ '^[0-9]{1,9}$')
        then true else false end as shaped
    ) s
    -- A lookup per item (a join may be planned as a read of the whole table). Null: no such job.
    cross join lateral (
      select case when s.shaped then (select j.attempts from public.jobs j where j.id = (t.e ->> 'job_id')::uuid) end as attempts
    ) j
    where not coalesce(case when j.attempts is not null then
        (t.e ->> 'attempt')::integer between 1 and greatest(j.attempts, 1)
        and (t.e ->> 'provider') ~ '^[a-z][a-z0-9_-]{0,62}$'
        and length(t.e ->> 'model') between 1 and 200 and (t.e ->> 'model') !~ '\s'
        and coalesce((t.e ->> 'input_tokens')::integer, 0) <= 100000000
        and coalesce((t.e ->> 'output_tokens')::integer, 0) <= 100000000
        and coalesce((t.e ->> 'cached_tokens')::integer, 0) <= coalesce((t.e ->> 'input_tokens')::integer, 0)
        and coalesce((t.e ->> 'images')::integer, 0) <= 1000
        and coalesce((t.e ->> 'latency_ms')::integer, 0) <= 86400000
      end, false)
  ) then
    return query
    with items as (
      select t.n, (t.e ->> 'job_id')::uuid as job_id, (t.e ->> 'attempt')::integer as attempt,
             t.e ->> 'provider' as provider, t.e ->> 'model' as model,
             coalesce((t.e ->> 'input_tokens')::integer, 0) as input_tokens,
             coalesce((t.e ->> 'output_tokens')::integer, 0) as output_tokens,
             coalesce((t.e ->> 'cached_tokens')::integer, 0) as cached_tokens,
             coalesce((t.e ->> 'images')::integer, 0) as images,
             (t.e ->> 'latency_ms')::integer as latency_ms
      from jsonb_array_elements(calls) with ordinality as t(e, n)
    ),
    priced as (
      select i.*, j.user_id, j.kind,
             -- numeric(14, 8): the ledger column's rounding, so the answer is the stored cost.
             private.usage_cost(p, i.input_tokens, i.cached_tokens, i.output_tokens, i.images)::numeric(14, 8) as cost_usd
      from items i
      cross join lateral (select j.user_id, j.kind from public.jobs j where j.id = i.job_id limit 1) j  -- a lookup each
      left join public.model_prices p on p.provider = i.provider and p.model = i.model
    ),
    recorded as (
      insert into public.usage_ledger
        (job_id, user_id, kind, attempt, worker_id, provider, model, input_tokens, output_tokens, cached_tokens,
         images, latency_ms, cost_usd)
      select r.job_id, r.user_id, r.kind, r.attempt, record_usage_items.worker_id, r.provider, r.model,
             r.input_tokens, r.output_tokens, r.cached_tokens, r.images, r.latency_ms, r.cost_usd
      from priced r
      order by r.n  -- the walk's order: ledger ids, and the jobs' key-share locks, as it takes them
    )
    select r.job_id, true, r.cost_usd, null::text from priced r order by r.n;
    return;
  end if;

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
          attempt => (item ->> 'attempt')::numeric::integer, provider => item ->> 'provider', model => item ->> 'model',
          input_tokens => coalesce((item ->> 'input_tokens')::numeric::integer, 0),
          output_tokens => coalesce((item ->> 'output_tokens')::numeric::integer, 0),
          cached_tokens => coalesce((item ->> 'cached_tokens')::numeric::integer, 0),
          images => coalesce((item ->> 'images')::numeric::integer, 0),
          latency_ms => (item ->> 'latency_ms')::numeric::integer);
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
