// Upload the files the `path` input names, keeping their layout below the search paths' common root.
import * as core from "@actions/core";
import * as glob from "@actions/glob";
import { DefaultArtifactClient } from "@actions/artifact";
import { statSync } from "node:fs";
import * as path from "node:path";

function commonRoot(searchPaths) {
  const split = searchPaths.map((p) => path.normalize(p).split(path.sep));
  const shared = [];
  for (let i = 0; i < Math.min(...split.map((parts) => parts.length)); i++) {
    if (!split.every((parts) => parts[i] === split[0][i])) break;
    shared.push(split[0][i]);
  }
  return shared.join(path.sep) || path.sep;
}

async function main() {
  const name = core.getInput("name") || "artifact";
  const patterns = core.getInput("path", { required: true });
  const globber = await glob.create(patterns, {
    implicitDescendants: true,
    followSymbolicLinks: true,
    omitBrokenSymbolicLinks: true,
    excludeHiddenFiles: core.getInput("include-hidden-files") !== "true",
  });
  const files = (await globber.glob()).filter((file) => !statSync(file).isDirectory());
  const searchPaths = globber.getSearchPaths();
  if (files.length === 0) {
    const message = `No files were found with the provided path: ${patterns}. No artifacts will be uploaded.`;
    const mode = core.getInput("if-no-files-found") || "warn";
    if (mode === "error") core.setFailed(message);
    else if (mode === "warn") core.warning(message);
    else core.info(message);
    return;
  }
  let root = searchPaths.length > 1 ? commonRoot(searchPaths) : searchPaths[0];
  if (searchPaths.length === 1 && files.length === 1 && files[0] === searchPaths[0]) root = path.dirname(files[0]);
  const client = new DefaultArtifactClient();
  if (core.getInput("overwrite") === "true") {
    await client.deleteArtifact(name).catch(() => undefined);
  }
  const options = { compressionLevel: Number(core.getInput("compression-level") || "6") };
  const days = Number(core.getInput("retention-days") || "0");
  if (days > 0) options.retentionDays = days;
  core.info(`Uploading ${files.length} file(s) as ${name} (root ${root})`);
  const { id, digest } = await client.uploadArtifact(name, files, root, options);
  core.setOutput("artifact-id", String(id));
  core.setOutput("artifact-digest", digest || "");
  core.setOutput("artifact-url", `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}/artifacts/${id}`);
}

main().catch((error) => core.setFailed(`upload-artifact: ${error.message}`));
