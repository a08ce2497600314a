-- Every distinct record version the lake holds: one row per (company, entity, id, content hash).
-- The writer stores a version again when a record returns to an earlier content; the payloads are
-- then identical by construction, so the first one seen is kept.
-- display_name names the record as a bookkeeper would: a name-list record by its name, a
-- transaction by its type, document number (else its date) and party, "Invoice 1042 · Amy's
-- Bird Sanctuary"; document_number is the transaction's own DocNumber.
-- Incremental: a build after new snapshots reads only their version files (lake.new_versions) and
-- adds the versions the table does not hold yet (the runner skips a new row whose UNIQUE_BY key is
-- there), so the first snapshot that wrote a version keeps it, as the full build's row_number does.
-- materialized: incremental
-- incremental_key: first_snapshot_id
-- #UNIQUE_BY(realm_id, entity, record_id, content_hash)
with

source as (
    select * from lake.new_versions
),

renamed as (
    select
        realm_id,
        entity,
        id as record_id,
        content_hash,
        snapshot_id as first_snapshot_id,
        sync_token,
        last_updated_at,
        active as is_active,
        txn_date,
        total_amt as total_amount,
        display_name,
        blob_sha256,
        payload::json as payload,
    from source
),

kinds as (
    select entity, kind from catalogue.entities
),

named as (
    select
        r.* exclude (display_name),
        r.payload->>'$.DocNumber' as document_number,
        case
            when k.kind = 'transaction' then concat_ws(
                ' · ',
                regexp_replace(r.entity, '([a-z])([A-Z])', '\1 \2', 'g') || ' '
                || coalesce(
                    r.payload->>'$.DocNumber',
                    r.txn_date::varchar,
                    r.payload->>'$.PaymentDate',
                    '#' || r.record_id
                ),
                coalesce(
                    r.payload->>'$.CustomerRef.name',
                    r.payload->>'$.VendorRef.name',
                    r.payload->>'$.EntityRef.name',
                    r.payload->>'$.EmployeeRef.name'
                )
            )
            else r.display_name
        end as display_name,
    from renamed as r
    left join kinds as k on r.entity = k.entity
),

final as (
    select * from named
    qualify row_number() over (
        partition by realm_id, entity, record_id, content_hash order by first_snapshot_id
    ) = 1
)

select
    realm_id,  -- #NO_NULLS
    entity,  -- #NO_NULLS
    record_id,  -- #NO_NULLS
    content_hash,  -- #NO_NULLS
    first_snapshot_id,
    sync_token,
    last_updated_at,
    is_active,
    txn_date,
    total_amount,
    display_name,
    document_number,
    blob_sha256,
    payload,  -- #NO_NULLS
from final
