"""One run: the plan of windows, raw records to frames, the normalizer process, and the loop that
streams batches from the source into the warehouse. Knows no Dagster."""
