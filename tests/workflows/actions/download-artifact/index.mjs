// Download one artifact by name (or every artifact of the run) into `path`.
import * as core from "@actions/core";
import { DefaultArtifactClient } from "@actions/artifact";
import * as os from "node:os";
import * as path from "node:path";

async function main() {
  const name = core.getInput("name");
  let target = core.getInput("path") || process.env.GITHUB_WORKSPACE || process.cwd();
  if (target.startsWith("~")) target = target.replace("~", os.homedir());
  const resolved = path.resolve(target);
  const options = {};
  const token = core.getInput("github-token");
  if (token) {
    const [repositoryOwner, repositoryName] = core.getInput("repository").split("/");
    if (!repositoryOwner || !repositoryName) throw new Error(`Invalid repository: '${core.getInput("repository")}'`);
    options.findBy = { token, workflowRunId: Number(core.getInput("run-id")), repositoryOwner, repositoryName };
  }
  const client = new DefaultArtifactClient();
  let artifacts;
  if (name) {
    const { artifact } = await client.getArtifact(name, options);
    artifacts = [artifact];
  } else {
    artifacts = (await client.listArtifacts({ latest: true, ...options })).artifacts;
    const pattern = core.getInput("pattern");
    if (pattern) artifacts = artifacts.filter((a) => path.matchesGlob(a.name, pattern));
  }
  for (const artifact of artifacts) {
    const into = name || core.getInput("merge-multiple") === "true" ? resolved : path.join(resolved, artifact.name);
    const { digestMismatch } = await client.downloadArtifact(artifact.id, { ...options, path: into, expectedHash: artifact.digest });
    if (digestMismatch) core.warning(`Artifact '${artifact.name}' digest validation failed`);
    core.info(`Downloaded ${artifact.name} (id ${artifact.id}) to ${into}`);
  }
  core.setOutput("download-path", resolved);
}

main().catch((error) => core.setFailed(`Unable to download artifact(s): ${error.message}`));
