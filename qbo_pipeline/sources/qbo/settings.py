"""Constants of the QBO dlt source (no logic here)."""

from __future__ import annotations

from datetime import timedelta

from qbo_pipeline.entities import CDC_LOOKBACK_DAYS, MAX_PAGE_SIZE

PAGE_SIZE = MAX_PAGE_SIZE
"""Records asked for per query page."""

PAGES_IN_FLIGHT = 4
"""Pages of one entity fetched at once (the realm's limiter caps the total across entities).
With EXTRACT_WORKERS entities at once this fills the realm's 9 slots; measured at 100k
transactions, 4 x 4 extracts as fast as 8 x 8 (about 8,300 records/s) while holding fewer
parsed pages in memory."""

ATTACHMENT_DOWNLOADS_IN_FLIGHT = 8
"""Attachment files of one page downloaded at once (the realm's limiter caps the total)."""

EXTRACT_WORKERS = 4
"""Entities extracted at once (dlt's thread pool for parallelized resources, ``[extract]
workers``; the environment variable ``EXTRACT__WORKERS`` overrides it)."""

PAGED_ENTITIES_AT_ONCE = 4
"""Paged entities reading at once. dlt starts every resource together (round robin) and each
paged entity keeps PAGES_IN_FLIGHT parsed pages, so without this cap every paged entity of the
company held pages at the same time: peak memory grew with the number of entities large enough
to page (790 -> 646 MiB at 100k transactions, extraction no slower)."""

CDC_GROUP_BUDGET = 800
"""Counted changes packed into one CDC request when the first answer overflowed: 80% of the
1000-object cap, leaving room for the deletions a COUNT(*) cannot see."""

CDC_SAFETY_MARGIN = timedelta(minutes=5)
"""How far before the parent snapshot's start CDC looks, so no change at the seam is missed."""

CDC_MAX_AGE = timedelta(days=CDC_LOOKBACK_DAYS) - timedelta(hours=1)
"""The oldest parent an incremental snapshot can start from; older ones force a full read."""

STAGING_DATASET = "landing"
"""dlt dataset name inside a run's staging folder."""

ROWS_PER_BATCH = 1000
"""Landing rows per Arrow batch handed to dlt."""

EXTRACT_BUFFER_ROWS = 1
"""Rows dlt's extract keeps per table before writing them out: none, as every batch the
source yields is already a row group's worth (up to ROWS_PER_BATCH). dlt's default, 5,000,
kept up to 5,000 rows of every table in memory until the end of the extract: 46 MB of
buffered batches at the extract's peak at 100k transactions; 1,000 still kept the last, short
page of every table (14 MB)."""

DLT_ENVIRONMENT = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "EXTRACT__WORKERS": str(EXTRACT_WORKERS),
    # The extract's buffered writers read their settings in the ``sources`` section:
    # ``EXTRACT__DATA_WRITER__...`` is silently ignored by dlt 1.x.
    "SOURCES__DATA_WRITER__BUFFER_MAX_ITEMS": str(EXTRACT_BUFFER_ROWS),
}
"""dlt settings of a backup's extraction, by the names of the environment variables that
override them: a backup sets them in dlt's in-memory configuration (``dlt.config``), never in the
environment, which still wins, as it does everywhere in dlt's configuration."""

QUERIES_PER_BATCH = 30
"""Queries (counts, small reads, id pages) sent in one batch request: QBO's batch maximum."""
