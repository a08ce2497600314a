"""Everything that talks to QuickBooks Online.

* :mod:`~qbo_pipeline.qbo.connect`: ``open_client``, ``login``, ``login_embedded``, ``logout``;
* :mod:`~qbo_pipeline.qbo.http`: :class:`QBOClient`, rate-aware, retrying, with typed faults;
* :mod:`~qbo_pipeline.qbo.paging`: every record once, pages in parallel, checked by COUNT(*);
* :mod:`~qbo_pipeline.qbo.query`: the query builder that escapes every value;
* :mod:`~qbo_pipeline.qbo.faults`: the typed errors and the JSON/XML fault parser;
* :mod:`~qbo_pipeline.qbo.auth`, :mod:`~qbo_pipeline.qbo.provider`,
  :mod:`~qbo_pipeline.qbo.tokens`: OAuth 2.0, token refresh, the encrypted token store;
* :mod:`~qbo_pipeline.qbo.limiter`: the per-realm limiter; :mod:`~qbo_pipeline.qbo.redact`:
  secrets kept out of logs.

It never imports the embedded sandbox: the two are independent implementations of one protocol.
"""
