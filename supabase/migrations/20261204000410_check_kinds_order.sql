-- private.check_kinds (20261123000200) named the unknown kinds in whatever order the plan gave:
-- on PostgreSQL 16+ a hash right anti join returns them in hash order, and the result cache's
-- columns on job_kinds were enough to tip PostgreSQL 17 into that plan. Unchanged but for
-- naming them in the order the caller gave them.
create or replace function private.check_kinds(field text, kinds text[]) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_unknown text;
begin
  perform private.check_array(field, kinds, 100);
  select string_agg(format('"%s"', private.excerpt(u.k, 63)), ', ' order by u.n)
  into v_unknown
  from (
    select k, n from unnest(kinds) with ordinality as t(k, n)
    where not exists (select 1 from public.job_kinds jk where jk.kind = t.k)
    order by n
    limit 5
  ) u;
  if v_unknown is not null then
    perform private.raise_invalid(field, 'unknown job kind(s): ' || v_unknown);
  end if;
end;
$$;

revoke all on function private.check_kinds(text, text[]) from public, anon, authenticated;
