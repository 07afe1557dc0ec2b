"""Batch scoring (`make predict-batch`): a CSV or Parquet file, or a directory of them, scored by the released model on
a Dask cluster, its rows checked as the service checks requests, the predictions written as Parquet."""
