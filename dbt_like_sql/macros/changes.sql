-- changes(a, b): every record that differs between snapshot a (old) and snapshot b (new) of
-- each company, with what happened to it:
--   added        live in b, not in a
--   deleted      live in a, not in b (deleted in QBO, or gone from a full read)
--   deactivated  a name-list record whose Active went true -> false (QBO never hard-deletes them)
--   reactivated  Active false -> true
--   voided       a transaction whose total went to 0 and whose PrivateNote says Voided
--   changed      any other change of content
-- Beside the action: display_name (a transaction's type, number and party, "Invoice 1042 · Amy's
-- Bird Sanctuary"), document_number (DocNumber), the amounts before and after (amount_old and
-- amount_new: TotalAmt or the entity's own amount field; balance_old and balance_new: Balance),
-- and changed_by, the user QBO says last modified the new version (MetaData.LastModifiedByRef,
-- its name where QBO sends one, else its id; null for a deletion, which QBO does not attribute).
-- Only keys with a manifest delta between the two snapshots are compared, so the cost follows
-- the amount of change, not the size of the company. a and b take any snapshot_at reference.
--   select action, count(*) from changes('previous', 'latest') group by all
create or replace macro changes(a, b) as table
with

old_snapshot as (
    select * from snapshot_at(a)
),

new_snapshot as (
    select * from snapshot_at(b)
),

span as (
    select
        o.realm_id,
        o.snapshot_id as old_snapshot_id,
        o.snapshot_seq as old_seq,
        n.snapshot_id as new_snapshot_id,
        n.snapshot_seq as new_seq,
        least(o.snapshot_seq, n.snapshot_seq) as low_seq,
        greatest(o.snapshot_seq, n.snapshot_seq) as high_seq,
    from old_snapshot as o
    inner join new_snapshot as n on o.realm_id = n.realm_id
),

touched as (
    select distinct h.realm_id, h.entity, h.record_id
    from marts.record_history as h
    inner join span as s on h.realm_id = s.realm_id
    where (h.valid_from_seq > s.low_seq and h.valid_from_seq <= s.high_seq)
        or (h.valid_to_seq > s.low_seq and h.valid_to_seq <= s.high_seq)
),

versions as (
    select
        h.*,
        s.old_seq,
        s.new_seq,
    from marts.record_history as h
    inner join touched as t
        on h.realm_id = t.realm_id and h.entity = t.entity and h.record_id = t.record_id
    inner join span as s on h.realm_id = s.realm_id
),

old_state as (
    select * from versions
    where valid_from_seq <= old_seq and (valid_to_seq is null or valid_to_seq > old_seq)
),

new_state as (
    select * from versions
    where valid_from_seq <= new_seq and (valid_to_seq is null or valid_to_seq > new_seq)
),

compared as (
    select
        t.realm_id,
        t.entity,
        t.record_id,
        o.content_hash as old_content_hash,
        n.content_hash as new_content_hash,
        o.is_active as old_is_active,
        n.is_active as new_is_active,
        o.total_amount as old_total_amount,
        n.total_amount as new_total_amount,
        coalesce(n.display_name, o.display_name) as display_name,
        coalesce(n.payload->>'$.DocNumber', o.payload->>'$.DocNumber') as document_number,
        (o.payload->>'$.Balance')::decimal(18, 2) as old_balance,
        (n.payload->>'$.Balance')::decimal(18, 2) as new_balance,
        coalesce(
            n.payload->>'$.MetaData.LastModifiedByRef.name',
            n.payload->>'$.MetaData.LastModifiedByRef.value'
        ) as changed_by,
        o.payload as old_payload,
        n.payload as new_payload,
    from touched as t
    left join old_state as o
        on t.realm_id = o.realm_id and t.entity = o.entity and t.record_id = o.record_id
    left join new_state as n
        on t.realm_id = n.realm_id and t.entity = n.entity and t.record_id = n.record_id
    where o.content_hash is distinct from n.content_hash
)

select
    c.realm_id,
    s.old_snapshot_id,
    s.new_snapshot_id,
    c.entity,
    c.record_id,
    case
        when c.old_content_hash is null then 'added'
        when c.new_content_hash is null then 'deleted'
        when c.old_is_active and not c.new_is_active then 'deactivated'
        when not c.old_is_active and c.new_is_active then 'reactivated'
        when coalesce(c.old_total_amount, 0) <> 0
            and c.new_total_amount = 0
            and starts_with(coalesce(c.new_payload->>'PrivateNote', ''), 'Voided')
            then 'voided'
        else 'changed'
    end as action,
    c.display_name,
    c.document_number,
    c.old_total_amount::decimal(18, 2) as amount_old,
    c.new_total_amount::decimal(18, 2) as amount_new,
    c.old_balance as balance_old,
    c.new_balance as balance_new,
    c.changed_by,
    c.old_content_hash,
    c.new_content_hash,
    c.old_payload,
    c.new_payload,
from compared as c
inner join span as s on c.realm_id = s.realm_id
order by c.realm_id, c.entity, c.record_id
