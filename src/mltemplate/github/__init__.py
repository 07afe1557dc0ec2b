"""The lines of the workflows that talk to GitHub, as commands over a small REST client (standard library only, so
privileged jobs run them with the runner's `python3` and nothing installed): `python3 -m mltemplate.github`."""
