// Check the subject exists in the registry under its digest, then record the attestation through the REST API.
import * as core from "@actions/core";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as path from "node:path";

async function main() {
  const name = core.getInput("subject-name", { required: true });
  const digest = core.getInput("subject-digest", { required: true });
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`subject-digest ${digest} is not a sha256 digest`);
  const tls = process.env.REGISTRY_TLS_VERIFY === "false" ? "false" : "true";
  const found = spawnSync("skopeo", ["inspect", `--tls-verify=${tls}`, `docker://${name}@${digest}`], { encoding: "utf8" });
  if (found.status !== 0) throw new Error(`${name}@${digest} is not in the registry: ${found.stderr}`);
  const bundle = {
    mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
    standin: true,
    subject: [{ name, digest: { sha256: digest.slice(7) } }],
    predicateType: "https://slsa.dev/provenance/v1",
    pushedToRegistry: core.getInput("push-to-registry") === "true",
  };
  const response = await fetch(`${process.env.GITHUB_API_URL}/repos/${process.env.GITHUB_REPOSITORY}/attestations`, {
    method: "POST",
    headers: { Authorization: `Bearer ${core.getInput("github-token")}`, "Content-Type": "application/json" },
    body: JSON.stringify({ bundle }),
  });
  if (!response.ok) throw new Error(`POST attestations: ${response.status} ${await response.text()}`);
  const { id } = await response.json();
  const bundlePath = path.join(process.env.RUNNER_TEMP || ".", "attestation.json");
  writeFileSync(bundlePath, JSON.stringify(bundle));
  core.setOutput("bundle-path", bundlePath);
  core.setOutput("attestation-id", String(id));
  core.setOutput("attestation-url", `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/attestations/${id}`);
}

main().catch((error) => core.setFailed(`attest-build-provenance: ${error.message}`));
