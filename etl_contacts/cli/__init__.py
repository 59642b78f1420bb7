"""`etl-contacts`: the command line. It starts runs through Dagster (`launch`), never the pipeline
directly, so a run from the shell is the run the schedule makes."""
