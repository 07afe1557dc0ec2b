"""ML CI/CD template: a DVC pipeline (prepare -> train -> evaluate) tracked in MLflow and served by BentoML."""
