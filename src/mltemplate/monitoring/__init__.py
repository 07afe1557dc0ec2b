"""Monitoring in production: the prediction log and its store, ground-truth feedback, drift and quality checks with
debounced alerts, their reports, and retraining on labelled production records."""
