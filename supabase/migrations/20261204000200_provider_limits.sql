-- Provider-wide rate limits shared by every worker replica, shared cooldowns after a 429/529, and
-- per-kind model fallback chains (issue 13, deliverables 3 and 4).
--
-- provider_limits: requests and tokens per minute per provider/model (operator configuration).
-- model_capacity: the state behind them: one token bucket per provider/model (capacity = the
--   per-minute limit, refilled continuously, as Anthropic enforces its own limits) and the cooldown
--   a 429/529 opened. Written only by acquire_model_capacity/report_model_rate_limit, each of
--   which locks the one row first, so replicas racing for capacity are serialized there.
-- kind_models: the ordered models a kind tries (position 1 first). A kind without rows uses the
--   model the worker's environment names (MODEL_<KIND>), as before.
-- Only the service role (the worker, operators) reads or calls any of this.

create table public.provider_limits (
  provider text not null check (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
  model text not null check (length(model) between 1 and 200),
  requests_per_minute integer check (requests_per_minute between 1 and 1000000),
  tokens_per_minute integer check (tokens_per_minute between 1 and 1000000000),
  primary key (provider, model)
);

comment on table public.provider_limits is
  'Per provider/model limits shared by every worker replica (null = no limit on that axis).';

create table public.model_capacity (
  provider text not null,
  model text not null,
  requests_left double precision not null default 0,
  tokens_left double precision not null default 0,
  refilled_at timestamptz not null default now(),
  cooldown_until timestamptz,
  cooldown_status integer,
  cooldowns integer not null default 0,  -- how many 429/529s were reported, for the dashboard
  primary key (provider, model)
);

comment on table public.model_capacity is
  'Token buckets and cooldowns behind provider_limits; written only by the capacity RPCs.';

create table public.kind_models (
  kind text not null references public.job_kinds (kind) on delete cascade,
  position integer not null check (position between 1 and 10),
  provider text not null check (provider ~ '^[a-z][a-z0-9_-]{0,39}$'),
  model text not null check (length(model) between 1 and 200),
  primary key (kind, position),
  unique (kind, provider, model)
);

comment on table public.kind_models is
  'Fallback chain per kind: the worker tries position 1 first, then the next on overload, cooldown or 5xx.';

alter table public.provider_limits enable row level security;
alter table public.model_capacity enable row level security;
alter table public.kind_models enable row level security;

-- The platform's default privileges grant everything to the API roles: take it all back first.
revoke all on table public.provider_limits, public.model_capacity, public.kind_models
  from public, anon, authenticated, service_role;
grant all on table public.provider_limits, public.kind_models to service_role;
grant select on table public.model_capacity to service_role;  -- state: changed through the RPCs only

create function private.check_provider_model(provider text, model text) returns void
language plpgsql immutable
set search_path = ''
as $$
begin
  if provider is null or provider !~ '^[a-z][a-z0-9_-]{0,39}$' then
    perform private.raise_invalid('provider', format(
      'must be a lowercase provider name such as anthropic (letters, digits, _ or -, at most 40), got %s',
      coalesce(quote_literal(private.excerpt(provider, 60)), 'null')));
  end if;
  if model is null or length(model) not between 1 and 200 then
    perform private.raise_invalid('model', format('must be a model name of 1 to 200 characters, got %s',
      coalesce(quote_literal(private.excerpt(model, 60)), 'null')));
  end if;
end;
$$;

-- Ask for one request's worth of capacity (and `tokens` of the per-minute token budget) on
-- provider/model. Granted capacity is taken at once; a refusal says why (cooldown, requests,
-- tokens) and how many seconds until asking again can succeed. Without a provider_limits row
-- only the cooldown applies: the answer is 'unlimited' (granted), read without the row lock, so
-- replicas asking for a model with no limits are not serialized on its row (and a worker may
-- grant such a model locally for a moment: worker/core/gate.py). clock_timestamp(), not now(): a
-- call that waited for the row lock must refill from the moment it got it, not from when its
-- transaction began.
create function public.acquire_model_capacity(provider text, model text, tokens integer default 0)
returns table (granted boolean, wait_seconds double precision, reason text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_now timestamptz := clock_timestamp();
  v_limits public.provider_limits;
  v_state public.model_capacity;
  v_cooldown_until timestamptz;
  v_requests double precision;
  v_tokens double precision;
  v_need double precision;
  v_wait double precision := 0;
  v_reason text := 'granted';
begin
  perform private.check_provider_model(provider, model);
  if tokens is null or tokens not between 0 and 1000000000 then
    perform private.raise_invalid('tokens', format('must be between 0 and 1000000000, got %s', coalesce(tokens::text, 'null')));
  end if;

  select * into v_limits from public.provider_limits l where l.provider = $1 and l.model = $2;
  if not found then
    select c.cooldown_until into v_cooldown_until from public.model_capacity c
     where c.provider = $1 and c.model = $2;
    if v_cooldown_until > v_now then
      return query select false, extract(epoch from v_cooldown_until - v_now)::double precision, 'cooldown'::text;
    else
      return query select true, 0::double precision, 'unlimited'::text;
    end if;
    return;
  end if;
  insert into public.model_capacity as c (provider, model, requests_left, tokens_left, refilled_at)
  values ($1, $2, coalesce(v_limits.requests_per_minute, 0), coalesce(v_limits.tokens_per_minute, 0), v_now)
  on conflict on constraint model_capacity_pkey do nothing;
  -- The row lock serializes every replica asking for this provider/model until commit.
  select * into strict v_state from public.model_capacity c where c.provider = $1 and c.model = $2 for update;
  v_now := clock_timestamp();

  if v_state.cooldown_until > v_now then
    return query select false, extract(epoch from v_state.cooldown_until - v_now)::double precision, 'cooldown'::text;
    return;
  end if;

  -- Refill both buckets for the time since the last call, up to one minute's worth.
  v_requests := v_state.requests_left;
  v_tokens := v_state.tokens_left;
  if v_limits.requests_per_minute is not null then
    v_requests := least(v_limits.requests_per_minute::double precision,
      v_requests + greatest(0, extract(epoch from v_now - v_state.refilled_at)) * v_limits.requests_per_minute / 60.0);
    if v_requests < 1 then
      v_wait := (1 - v_requests) * 60.0 / v_limits.requests_per_minute;
      v_reason := 'requests';
    end if;
  end if;
  if v_limits.tokens_per_minute is not null then
    v_tokens := least(v_limits.tokens_per_minute::double precision,
      v_tokens + greatest(0, extract(epoch from v_now - v_state.refilled_at)) * v_limits.tokens_per_minute / 60.0);
    -- A request larger than the whole budget waits for a full bucket rather than forever.
    v_need := least(tokens, v_limits.tokens_per_minute);
    if v_tokens < v_need and (v_need - v_tokens) * 60.0 / v_limits.tokens_per_minute > v_wait then
      v_wait := (v_need - v_tokens) * 60.0 / v_limits.tokens_per_minute;
      v_reason := 'tokens';
    end if;
  end if;

  if v_reason = 'granted' then
    if v_limits.requests_per_minute is not null then
      v_requests := v_requests - 1;
    end if;
    if v_limits.tokens_per_minute is not null then
      v_tokens := v_tokens - v_need;
    end if;
  end if;
  update public.model_capacity c
     set requests_left = v_requests, tokens_left = v_tokens, refilled_at = v_now
   where c.provider = $1 and c.model = $2;
  return query select v_reason = 'granted', v_wait, v_reason;
end;
$$;

-- The provider answered 429 (rate limited) or 529 (overloaded): no replica may send to this
-- provider/model for retry_after_seconds. A 429 also empties the request bucket: the provider
-- said the budget is spent, so capacity comes back at the configured rate once the cooldown ends.
-- An earlier, longer cooldown is never shortened. Returns when the cooldown ends.
create function public.report_model_rate_limit(
  provider text, model text, status integer, retry_after_seconds double precision
) returns timestamptz
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_until timestamptz;
begin
  perform private.check_provider_model(provider, model);
  if status is null or status not in (429, 529) then
    perform private.raise_invalid('status', format('must be 429 (rate limited) or 529 (overloaded), got %s', coalesce(status::text, 'null')));
  end if;
  if retry_after_seconds is null or retry_after_seconds = 'NaN' or retry_after_seconds not between 0 and 3600 then
    perform private.raise_invalid('retry_after_seconds', format('must be between 0 and 3600, got %s', coalesce(retry_after_seconds::text, 'null')));
  end if;
  v_until := clock_timestamp() + make_interval(secs => retry_after_seconds);
  insert into public.model_capacity as c (provider, model, refilled_at, cooldown_until, cooldown_status, cooldowns)
  values ($1, $2, v_until, v_until, status, 1)
  on conflict on constraint model_capacity_pkey do update
    set cooldown_until = greatest(c.cooldown_until, excluded.cooldown_until),
        cooldown_status = excluded.cooldown_status,
        cooldowns = c.cooldowns + 1,
        requests_left = case when excluded.cooldown_status = 429 then 0 else c.requests_left end,
        refilled_at = case when excluded.cooldown_status = 429 then greatest(c.refilled_at, excluded.refilled_at)
                           else c.refilled_at end
  returning c.cooldown_until into v_until;
  return v_until;
end;
$$;

select private.grant_calls(array[
  'public.acquire_model_capacity(text, text, integer)',
  'public.report_model_rate_limit(text, text, integer, double precision)'
], 'service_role');

revoke all on all functions in schema private from public, anon, authenticated;
