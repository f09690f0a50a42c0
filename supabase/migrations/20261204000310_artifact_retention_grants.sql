-- Who may call the retention functions (20261204000300): the service role alone, as for the
-- other worker calls (pattern of 20261123001000_jobs_grants.sql).

select private.grant_calls(array[
  'public.claim_artifact_deletions(integer, integer)',
  'public.ack_artifact_deletions(bigint[])',
  'public.enqueue_orphaned_artifacts(interval, integer)'
], 'service_role');

revoke all on function private.record_artifact_deletions() from public, anon, authenticated;
revoke all on function private.check_interval(text, interval, interval) from public, anon, authenticated;
