-- Who may call what, once for the whole API: users submit and cancel; only the service role runs
-- the worker side; nothing in schema private is callable through the API (create function
-- grants execute to public, so it is taken back here, after the last private function).
--
-- Each function is named once; ::regprocedure checks it against the catalog (a typo fails the
-- migration) and prints it qualified and quoted. Only these functions are touched: a project
-- that has its own functions in public keeps their grants.

-- The one place that says how a function is granted: revoked from every API role, then granted
-- to ``role``. Later migrations grant their own functions through it.
create function private.grant_calls(calls text[], role text) returns void
language plpgsql
set search_path = ''
as $$
declare
  fn text;
begin
  if role not in ('authenticated', 'service_role') then
    raise exception 'grant_calls: role must be authenticated or service_role, got %', role;
  end if;
  foreach fn in array calls loop
    execute format('revoke all on function %s from public, anon, authenticated', fn::regprocedure);
    execute format('grant execute on function %s to %I', fn::regprocedure, role);
  end loop;
end;
$$;

select private.grant_calls(array[
  'public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid, boolean)',
  'public.cancel_job(uuid)'
], 'authenticated');

select private.grant_calls(array[
  'public.claim_jobs(text, text[], integer, integer)',
  'public.renew_leases(text, uuid[], integer)',
  'public.release_jobs(text, uuid[])',
  'public.reap_expired_leases()',
  'public.next_job_run_at(text[])',
  'public.report_progress(uuid, text, numeric, text, text)',
  'public.complete_job(uuid, text, jsonb)',
  'public.complete_jobs(text, jsonb)',
  'public.fail_job(uuid, text, jsonb, boolean)',
  'public.defer_job(uuid, text, timestamptz, text)',
  'public.purge_finished_jobs(interval)'
], 'service_role');

revoke all on all functions in schema private from public, anon, authenticated;
