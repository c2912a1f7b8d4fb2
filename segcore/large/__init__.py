"""Block-wise whole slides: block plan and ownership, the large-image run, Dask, intensity mapping."""
