"""The model registry: MLflow runs, registered model versions and their aliases (the only code that talks to MLflow)."""
