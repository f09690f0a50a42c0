-- acquire_model_capacity_batch: many model calls' capacity in one call (issue 14, fewer round
-- trips per job).
--
-- The worker asked acquire_model_capacity once before every model request: 1.9 calls per AI job,
-- the largest of its REST round trips. It now asks for every request that became ready while the
-- previous call was in flight, for any job and model, in one call. Each item goes through
-- acquire_model_capacity itself (its checks, its buckets, its cooldowns), so the two cannot
-- drift: a field it refuses is a 400 naming the item (requests[i].field) and the batch takes
-- nothing. Items are independent: one refused does not refuse the others.
--
-- Locks: acquire_model_capacity locks its provider/model row until commit. A batch takes them in
-- (provider, model) order, whatever the order of its items, so two replicas asking for [a, b]
-- and [b, a] at once wait for each other instead of deadlocking. Rows come back in the items'
-- order, each with its index (item, from 0).

create function public.acquire_model_capacity_batch(requests jsonb)
returns table (item integer, granted boolean, wait_seconds double precision, reason text)
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  r record;
  i integer := 0;
  v_answer record;
  v_items integer[] := '{}';
  v_granted boolean[] := '{}';
  v_waits double precision[] := '{}';
  v_reasons text[] := '{}';
  v_message text;
  v_hint text;
begin
  perform private.check_batch('requests', requests, '{"provider", "model", "tokens"}');
  -- The JSON shape first (acquire_model_capacity's own arguments are typed).
  for r in select e from jsonb_array_elements(requests) as t(e) loop
    perform private.check_batch_object(format('requests[%s]', i), r.e, array['provider', 'model', 'tokens']);
    perform private.check_json_string(format('requests[%s].provider', i), r.e -> 'provider');
    perform private.check_json_string(format('requests[%s].model', i), r.e -> 'model');
    perform private.check_json_integer(format('requests[%s].tokens', i), r.e -> 'tokens');
    i := i + 1;
  end loop;

  for r in
    select t.e, (t.n - 1)::integer as n
      from jsonb_array_elements(requests) with ordinality as t(e, n)
     order by t.e ->> 'provider', t.e ->> 'model', t.n
  loop
    begin
      select * into strict v_answer from public.acquire_model_capacity(
        provider => r.e ->> 'provider', model => r.e ->> 'model',
        tokens => coalesce((r.e ->> 'tokens')::numeric::integer, 0));
    exception when invalid_parameter_value then
      -- acquire_model_capacity names the field; the batch names the item too, and takes nothing.
      get stacked diagnostics v_message = message_text, v_hint = pg_exception_hint;
      raise exception 'requests[%].%', r.n, v_message using errcode = '22023', hint = v_hint;
    end;
    v_items := v_items || r.n;
    v_granted := v_granted || v_answer.granted;
    v_waits := v_waits || v_answer.wait_seconds;
    v_reasons := v_reasons || v_answer.reason;
  end loop;

  return query
    select a.item, a.granted, a.wait_seconds, a.reason
      from unnest(v_items, v_granted, v_waits, v_reasons) as a(item, granted, wait_seconds, reason)
     order by a.item;
end;
$$;

comment on function public.acquire_model_capacity_batch(jsonb) is
  'Worker: acquire_model_capacity for each of many {provider, model, tokens} requests in one call '
  '(rows locked in provider/model order); one row per item, in the items'' order.';

select private.grant_calls(array['public.acquire_model_capacity_batch(jsonb)'], 'service_role');
