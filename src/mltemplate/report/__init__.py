"""The pull-request report: run the PR's pipeline, compare it with the base branch, measure serving cost (pr),
as data (artifact); render that data as the PR comment with the trusted quality gate (comment)."""
