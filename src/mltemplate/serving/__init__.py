"""The BentoML prediction service over the pipeline's model: API bodies, settings, request guard, batching.
Only this package and the core modules go into the Bento."""
