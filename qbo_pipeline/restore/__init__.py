"""Restore: turn a past state kept in the lake into a reviewed plan, and apply it safely.

- :mod:`~qbo_pipeline.restore.scope`: what a plan covers (records, entities, changed since, all).
- :mod:`~qbo_pipeline.restore.plan`: compare snapshot and live company, order the steps
  (reading in ``plan_reads``, the conflict rule in ``plan_conflicts``, steps in ``plan_steps``).
- :mod:`~qbo_pipeline.restore.payloads`: what is sent (fields QBO owns stripped, by rule).
- :mod:`~qbo_pipeline.restore.remap`: old id -> new id and reference rewriting by catalogue paths.
- :mod:`~qbo_pipeline.restore.singletons`: the writable fields of CompanyInfo and Preferences.
- :mod:`~qbo_pipeline.restore.review`: the plan as a terminal table and an HTML page.
- :mod:`~qbo_pipeline.restore.apply`: approval, idempotent writes, 5010 re-planning, resume.
- :mod:`~qbo_pipeline.restore.audit`: the append-only audit log.
- :mod:`~qbo_pipeline.restore.status`: the append-only step status, folded on read.
- :mod:`~qbo_pipeline.restore.jsonl`: durable JSON-lines appends shared by both logs.
- :mod:`~qbo_pipeline.restore.store`: plan files under the lake's ``restore/<plan_id>/``.
- :mod:`~qbo_pipeline.restore.verify`: the post-apply comparison with the snapshot.
- :mod:`~qbo_pipeline.restore.sources`: the planner's readers over the QBO client and the lake.
- :mod:`~qbo_pipeline.restore.run`: the whole flow over the client and the lake (CLI, Dagster).
"""
