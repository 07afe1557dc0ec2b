"""ML CI/CD template. Core modules here (params, paths, schema, contract, estimators, model, canonical, predict,
diagnosis, model_metadata, identity, dvcfiles, git, probe, atomic, errors) are used by every job; each job has its
folder: pipeline/, registry/, serving/, release/, report/."""
