"""dlt sources: how records leave QBO and land in the lake's staging area."""
