"""The pull-request report: run the PR's pipeline, compare it with the base branch, measure serving cost."""
