"""The DuckDB warehouse over the lake: the small runner for ``dbt_like_sql/`` and its users.

- ``runner``: discover models and macros, find references, order them (``load_project``).
- ``current``: the current-state views (``marts.invoices``, ...) generated from the catalogue.
- ``sql_tests``: the column tests declared as comment tags (``-- #UNIQUE``, ...).
- ``sources``: the ``lake.*`` views and ``catalogue.*`` seeds created before any model.
- ``warehouse``: write-audit-publish build (``build_warehouse``) and ``connect``.
- ``diff``: the changes between two snapshots (``compute_diff``); ``review``: the HTML review.

README.md beside this file documents every model and macro with example queries.
"""
