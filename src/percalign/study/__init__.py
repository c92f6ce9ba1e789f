"""Studies: the shared units of work, the study spec, and the pipeline that runs it."""
