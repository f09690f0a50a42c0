-- Who may call what, once for the whole API: users submit and cancel; only the service role runs
-- the worker side; nothing in schema private is callable through the API (create function
-- grants execute to public, so it is taken back here, after the last private function).
--
-- Each function is named once; ::regprocedure checks it against the catalog (a typo fails the
-- migration) and prints it qualified and quoted. Only these functions are touched: a project
-- that has its own functions in public keeps their grants.

do $$
declare
  user_calls constant text[] := array[
    'public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid)',
    'public.cancel_job(uuid)'
  ];
  worker_calls constant text[] := array[
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
  ];
  fn text;
begin
  foreach fn in array user_calls || worker_calls loop
    execute format('revoke all on function %s from public, anon, authenticated', fn::regprocedure);
  end loop;
  foreach fn in array user_calls loop
    execute format('grant execute on function %s to authenticated', fn::regprocedure);
  end loop;
  foreach fn in array worker_calls loop
    execute format('grant execute on function %s to service_role', fn::regprocedure);
  end loop;
end
$$;

revoke all on all functions in schema private from public, anon, authenticated;
