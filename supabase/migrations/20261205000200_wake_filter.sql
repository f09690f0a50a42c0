-- The update trigger of routed wake-ups returns at once for statements that leave every row
-- they touched running.
--
-- jobs_wake_on_update (20261204000600_worker_wakeups.sql) runs once per UPDATE statement on
-- jobs. Most of those statements are claims (queued -> running), progress reports and lease
-- renewals (running -> running): neither of its two questions (did a job become queued? did a
-- running job stop?) can find a row in them, yet each joined the statement's old and new rows
-- twice to find out. One scan of the new rows now answers both: if every row is running, there
-- is nothing to wake. The rest of the function is unchanged.

create or replace function private.wake_for_queued_jobs() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  g record;
begin
  -- Per kind, the jobs that became queued in this statement: new ones, and ones that came back
  -- or moved in time. Claims, renewals, progress and outcomes find none: no lock, no wake-up
  -- (wake_parked_workers takes the gate only when it runs).
  if tg_op = 'INSERT' then
    for g in
      select n.kind, count(*)::integer as jobs,
             min(n.run_at) filter (where n.run_at <= now()) as due_at,
             min(n.run_at) filter (where n.run_at > now()) as next_at
      from new_rows n where n.status = 'queued' group by n.kind
    loop
      perform private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
    end loop;
    return null;
  end if;
  -- A statement that leaves every row it touched running (a claim, a progress report, a lease
  -- renewal) can neither queue a job nor free a place under a cap: one pass over its new rows
  -- instead of the two joins below (bench/FIXES.md, "claims that could not wake anyone").
  if not exists (select 1 from new_rows n where n.status <> 'running') then
    return null;
  end if;
  for g in
    select n.kind, count(*)::integer as jobs,
           min(n.run_at) filter (where n.run_at <= now()) as due_at,
           min(n.run_at) filter (where n.run_at > now()) as next_at
    from new_rows n join old_rows o on o.id = n.id
    where n.status = 'queued' and (o.status <> 'queued' or o.run_at is distinct from n.run_at)
    group by n.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, g.due_at, g.next_at);
  end loop;
  -- A job that stops running frees a place under its user's running cap: a due job of that user
  -- and kind that waited for it is claimable now, though nothing about it changed.
  -- One index probe per (user, kind), in the queued index's order: a probe per row, planned for
  -- the transition table's unknown size, read every job of the user (bench/FIXES.md).
  for g in
    select f.kind, sum(f.jobs)::integer as jobs
    from (
      select n.user_id, n.kind, count(*) as jobs
      from new_rows n join old_rows o on o.id = n.id
      where o.status = 'running' and n.status not in ('running', 'queued')
      group by n.user_id, n.kind
    ) f
    cross join lateral (
      select 1 from public.jobs q
      where q.user_id = f.user_id and q.kind = f.kind and q.status = 'queued' and q.run_at <= now()
      order by q.priority desc, q.run_at, q.id
      limit 1
    ) due
    group by f.kind
  loop
    perform private.wake_parked_workers(g.kind, g.jobs, now(), null);
  end loop;
  return null;
end;
$$;
