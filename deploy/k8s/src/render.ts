import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments, stringify } from 'yaml';
import { kubeconformBin, kustomizeBin, repo, schemaLocations } from './tools.js';

const run = promisify(execFile);

/** A rendered Kubernetes object, loosely typed: the checks read what they need. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<string, unknown>;
  [key: string]: unknown;
}

/** The kustomize folder of this package, e.g. `overlays/dev`. */
export const k8sDir = join(repo, 'deploy', 'k8s');

/** `kustomize build <dir>`: the YAML stream and its objects. */
export async function kustomizeBuild(dir: string): Promise<{ yaml: string; objects: K8sObject[] }> {
  const { stdout } = await run(kustomizeBin, ['build', join(k8sDir, dir)], { maxBuffer: 16 * 1024 * 1024 });
  const objects = parseAllDocuments(stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`kustomize build ${dir}: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
  return { yaml: stdout, objects };
}

/** Objects back to one YAML stream (for validating objects a test changed). */
export function toYaml(objects: readonly unknown[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

/** One resource in kubeconform's JSON output. */
export interface KubeconformResource {
  kind: string;
  name: string;
  version: string;
  status: 'statusValid' | 'statusInvalid' | 'statusError' | 'statusSkipped' | 'statusEmpty';
  msg: string;
  validationErrors?: { path: string; msg: string }[];
}

export interface KubeconformResult {
  /** Exit status: 0 when every resource is valid. */
  code: number;
  resources: KubeconformResource[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
}

/**
 * Validates a YAML stream with kubeconform against the cached schemas only (no schema is ever fetched): strict
 * (no field a schema does not declare, no duplicate key), and a kind without a schema is an error, not a skip.
 */
export async function kubeconform(yaml: string, kubernetesVersion: string): Promise<KubeconformResult> {
  const args = [
    '-strict',
    '-summary',
    '-verbose',
    '-output',
    'json',
    '-kubernetes-version',
    kubernetesVersion,
  ];
  for (const location of schemaLocations) args.push('-schema-location', location);
  const child = execFile(kubeconformBin, [...args, '-'], { maxBuffer: 16 * 1024 * 1024 });
  const output = new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
  child.stdin?.end(yaml);
  const { code, stdout, stderr } = await output;
  let parsed: Omit<KubeconformResult, 'code'>;
  try {
    parsed = JSON.parse(stdout) as Omit<KubeconformResult, 'code'>;
  } catch {
    throw new Error(`kubeconform exited ${code} without JSON output: ${stderr || stdout}`);
  }
  return { code, resources: parsed.resources ?? [], summary: parsed.summary };
}
