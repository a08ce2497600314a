"""qbo_pipeline: QuickBooks Online backup and recovery.

An independent, versioned, point-in-time history of each company's accounting graph, with diffs,
exports in the formats accountants open, and reviewed, dependency-ordered, idempotent restores.
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Arrow's C++ code (Parquet reading and writing, compute kernels) allocates from the process-wide
# default pool, which Arrow picks once, when pyarrow is imported: its bundled mimalloc kept every
# freed buffer resident (76 of a 10k company's landing's 100 MiB; ``pa.set_memory_pool`` only
# redirects pyarrow's own allocations). The system allocator hands freed memory back (see
# qbo_pipeline.memory). Only a process that has not imported pyarrow yet can still choose, and
# an explicit ``ARROW_DEFAULT_MEMORY_POOL`` wins.
if "pyarrow" not in _sys.modules:
    _os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
