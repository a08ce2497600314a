-- snapshot_at(ref): for each company, the live snapshot that ref names (retired ones never).
--   'latest' | 'previous'         the newest live snapshot, or the one before it
--   '20261121T053012.123456Z'     an exact snapshot id, or a unique prefix of one ('20261121T05')
--   '2026-11-01'                  a date: the newest snapshot taken on or before that day (UTC)
--   '2026-11-01 12:00[:00][+02]'  a timestamp (UTC unless it carries an offset): the newest
--                                 snapshot taken at or before it
-- A company with no such snapshot has no row. A malformed or ambiguous reference is an error.
create or replace macro snapshot_at(snapshot_ref) as table
with

arg as (
    select trim(cast(snapshot_ref as varchar)) as ref
),

parsed as (
    select
        ref,
        case
            when lower(ref) in ('latest', 'previous') then lower(ref)
            when regexp_full_match(ref, '[0-9]{1,8}(T[0-9.]*Z?)?') then 'id'
            when regexp_full_match(ref, '[0-9]{4}-[0-9]{2}-[0-9]{2}') then 'date'
            else 'timestamp'
        end as ref_kind,
        case
            when regexp_full_match(ref, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                then timezone('UTC', try_cast(ref as date)::timestamp + interval 1 day)
            when regexp_matches(ref, '(Z|[+-][0-9]{2}(:?[0-9]{2})?)$')
                then try_cast(ref as timestamptz)
            else timezone('UTC', try_cast(ref as timestamp))
        end as cutoff,
    from arg
),

checked as (
    select
        ref,
        case
            when ref_kind in ('date', 'timestamp') and cutoff is null
                then error(
                    'snapshot reference ' || ref || ' is not latest, previous, a snapshot id '
                    || '(or prefix), a date (YYYY-MM-DD) or a timestamp'
                )
            else ref_kind
        end as ref_kind,
        cutoff,
    from parsed
),

matches as (
    select
        c.realm_id,
        c.snapshot_id,
        c.snapshot_seq,
        c.server_at,
        k.ref,
        k.ref_kind,
    from intermediate.int_snapshot_chain as c, checked as k
    where c.is_live and case k.ref_kind
        when 'latest' then c.live_rank_from_latest = 1
        when 'previous' then c.live_rank_from_latest = 2
        when 'id' then starts_with(c.snapshot_id, k.ref)
        when 'date' then c.server_at < k.cutoff
        else c.server_at <= k.cutoff
    end
),

ranked as (
    select
        *,
        count(*) over (partition by realm_id) as candidates,
        bool_or(snapshot_id = ref) over (partition by realm_id) as has_exact,
        row_number() over (partition by realm_id order by snapshot_seq desc) as newest_first,
    from matches
)

select
    realm_id,
    snapshot_id,
    snapshot_seq,
    server_at,
from ranked
where case
    when ref_kind <> 'id' then newest_first = 1
    when has_exact then snapshot_id = ref
    when candidates > 1 then error(
        'snapshot prefix ' || ref || ' is ambiguous in realm ' || realm_id || ': '
        || candidates || ' snapshots start with it'
    )
    else true
end
