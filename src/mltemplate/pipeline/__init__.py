"""The DVC pipeline: get the data, then the stages prepare -> train -> evaluate, and the quality gate."""
