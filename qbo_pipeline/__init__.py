"""qbo_pipeline: QuickBooks Online backup and recovery.

An independent, versioned, point-in-time history of each company's accounting graph, with diffs,
exports in the formats accountants open, and reviewed, dependency-ordered, idempotent restores.
"""

__version__ = "0.1.0"
