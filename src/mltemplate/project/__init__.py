"""The project's link to its template: `make init` turns a checkout of the template into the team's project (its names,
its CSV, a proposed params.yaml), `make update-template` merges the template's later versions into it, and `owned`
lists what the team owns (an update keeps it; a pull request touching only it takes CI's fast lane). docs/adopt.md."""
