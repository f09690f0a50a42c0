-- Who may call the retention functions (20261204000300): the service role alone, as for the
-- other worker calls (pattern of 20261123001000_jobs_grants.sql).

do $$
declare
  worker_calls constant text[] := array[
    'public.claim_artifact_deletions(integer, integer)',
    'public.ack_artifact_deletions(bigint[])',
    'public.enqueue_orphaned_artifacts(interval, integer)'
  ];
  fn text;
begin
  foreach fn in array worker_calls loop
    execute format('revoke all on function %s from public, anon, authenticated', fn::regprocedure);
    execute format('grant execute on function %s to service_role', fn::regprocedure);
  end loop;
end
$$;

revoke all on function private.record_artifact_deletions() from public, anon, authenticated;
revoke all on function private.check_interval(text, interval, interval) from public, anon, authenticated;
