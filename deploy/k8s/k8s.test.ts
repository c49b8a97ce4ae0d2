import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  type Autoscaler,
  checkAutoscaling,
  checkGpu,
  checkNamespace,
  checkPodSecurity,
  checkServices,
  checkTopics,
  deploymentName,
  type TopicsMode,
} from './src/invariants.js';
import { type K8sObject, k8sDir, kubeconform, kustomizeBuild, toYaml } from './src/render.js';
import { readSources, type Sources } from './src/sources.js';
import { type KafkaScalerKeys, kafkaScalerKeysFile, strictSchema, versions } from './src/tools.js';

// Renders every overlay with a real kustomize and validates every object with kubeconform against the strict
// Kubernetes schemas (and KEDA's CRD schema), then holds the manifests to LiveLens' own rules (src/invariants.ts)
// read from the services' source. The last block shows that each kind of check rejects a broken manifest.

/** What each overlay must be. A new overlay fails the first test until it is described here. */
const overlays: Record<string, { autoscaler: Autoscaler; topics: TopicsMode; gpu: string[] }> = {
  dev: { autoscaler: 'none', topics: 'services-create', gpu: [] },
  production: { autoscaler: 'keda', topics: 'pre-created', gpu: [] },
  'production-hpa': { autoscaler: 'hpa', topics: 'pre-created', gpu: [] },
  gpu: { autoscaler: 'keda', topics: 'pre-created', gpu: ['frame-analyzer', 'asr'] },
};

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: the negative tests reach into any field of an object to break it.
type Loose = any;

let sources: Sources;
let kafkaKeys: KafkaScalerKeys;
const rendered = new Map<string, { yaml: string; objects: K8sObject[] }>();

beforeAll(async () => {
  sources = await readSources();
  kafkaKeys = JSON.parse(await readFile(kafkaScalerKeysFile, 'utf8')) as KafkaScalerKeys;
  for (const overlay of Object.keys(overlays))
    rendered.set(overlay, await kustomizeBuild(`overlays/${overlay}`));
});

const objectsOf = (overlay: string) => rendered.get(overlay)?.objects ?? [];
/** A deep copy of an overlay's objects, for a test to break. */
const copyOf = (overlay: string) => structuredClone(objectsOf(overlay));
const get = (objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o as K8sObject & { spec: Loose; data: Record<string, string> };
};
const container = (objects: K8sObject[], service: string) =>
  get(objects, 'Deployment', deploymentName(service)).spec.template.spec.containers[0];

it('describes every overlay in deploy/k8s/overlays', async () => {
  const dirs = (await readdir(join(k8sDir, 'overlays'), { withFileTypes: true })).filter((d) =>
    d.isDirectory(),
  );
  expect(dirs.map((d) => d.name).sort()).toEqual(Object.keys(overlays).sort());
});

it('reads what the manifests must agree with from the services’ source', () => {
  expect([...sources.services.keys()].sort()).toEqual(['asr', 'frame-analyzer', 'fusion', 'ingest']);
  const consumers = (s: string) =>
    sources.services.get(s)?.consumers.map((c) => `${c.defaultGroup} ${c.topic}`);
  expect(consumers('frame-analyzer')).toEqual(['livelens-frame-analyzer live.frames.v1']);
  expect(consumers('asr')).toEqual(['livelens-asr live.audio.v1']);
  expect(consumers('fusion')).toEqual([
    'livelens-fusion-frames live.frame-analysis.v1',
    'livelens-fusion-transcripts live.transcripts.v1',
    'livelens-fusion-stream-events live.stream-events.v1',
  ]);
  expect(consumers('ingest')).toEqual([]);
  const ingest = sources.services.get('ingest');
  expect(ingest?.fields.get('INGEST_GRPC_PORT')?.default).toBe('50051');
  expect(ingest?.fields.get('SHUTDOWN_TIMEOUT_MS')?.default).toBe('25000');
  expect(sources.services.get('asr')?.extraVariables).toContain('LIVELENS_MODELS_DIR');
  expect(sources.topics.get('frames')).toEqual({
    role: 'frames',
    name: 'live.frames.v1',
    retentionMs: 86_400_000,
  });
  expect(sources.lagMetric).toEqual({ suffix: 'consumer_lag_messages', labelNames: ['topic', 'partition'] });
  // KEDA's kafka scaler, read from its source.
  expect(kafkaKeys.triggerMetadata.lagThreshold).toBe('int64');
  expect(kafkaKeys.fromEnv).toContain('bootstrapServers');
  expect(kafkaKeys.enums.offsetResetPolicy).toEqual(['latest', 'earliest']);
});

describe.each(Object.entries(overlays))('overlays/%s', (overlay, expected) => {
  it.each(versions.kubernetes)(
    'is valid against the Kubernetes %s schemas (kubeconform -strict)',
    async (k8s) => {
      const { yaml, objects } = rendered.get(overlay) ?? { yaml: '', objects: [] };
      const result = await kubeconform(yaml, k8s);
      const notValid = result.resources.filter((r) => r.status !== 'statusValid');
      expect(notValid.map((r) => `${r.kind}/${r.name}: ${r.msg}`)).toEqual([]);
      expect(result.code).toBe(0);
      expect(result.summary).toEqual({ valid: objects.length, invalid: 0, errors: 0, skipped: 0 });
      // Every object was validated, the custom resources too (against KEDA's CRD schema).
      const kinds = new Set(result.resources.map((r) => r.kind));
      expect(kinds).toEqual(new Set(objects.map((o) => o.kind)));
      expect(kinds.has('ScaledObject')).toBe(expected.autoscaler === 'keda');
    },
  );

  it('runs each service with probes on its metrics port, resources, graceful shutdown, only declared variables', () => {
    expect(checkServices(objectsOf(overlay), sources)).toEqual([]);
  });

  it('runs every pod non-root, unprivileged, on a read-only root filesystem', () => {
    expect(checkPodSecurity(objectsOf(overlay))).toEqual([]);
  });

  it('puts everything in the livelens namespace', () => {
    expect(checkNamespace(objectsOf(overlay))).toEqual([]);
  });

  it(`gets its topics: ${expected.topics}`, () => {
    expect(checkTopics(objectsOf(overlay), sources, expected.topics)).toEqual([]);
  });

  it(`scales the consumer stages on lag: ${expected.autoscaler}`, () => {
    expect(checkAutoscaling(objectsOf(overlay), sources, expected.autoscaler, kafkaKeys)).toEqual([]);
  });

  it(`asks for GPUs only for ${expected.gpu.join(', ') || 'no service'}`, () => {
    expect(checkGpu(objectsOf(overlay), sources, expected.gpu)).toEqual([]);
  });
});

// `kubectl apply -k` renders with the kustomize built into kubectl, older than ours (kubectl 1.32 has v5.5.0,
// which crashed on an overlay ours rendered). Where a kubectl is installed, its rendering must be the same.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
it.skipIf(kubectl.status !== 0).each(Object.keys(overlays))(
  'kubectl kustomize overlays/%s renders the same YAML',
  async (overlay) => {
    const { stdout } = await run('kubectl', ['kustomize', join(k8sDir, 'overlays', overlay)], {
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toBe(rendered.get(overlay)?.yaml);
  },
);

it('models-fill.yaml is a valid pod, restricted, on the models PVC', async () => {
  const yaml = await readFile(join(k8sDir, 'models-fill.yaml'), 'utf8');
  for (const k8s of versions.kubernetes) {
    const result = await kubeconform(yaml, k8s);
    expect(result.summary).toEqual({ valid: 1, invalid: 0, errors: 0, skipped: 0 });
  }
  const pod = parseDocument(yaml).toJS() as K8sObject & { spec: Loose };
  expect(checkPodSecurity([pod])).toEqual([]);
  expect(checkNamespace([pod, get(objectsOf('production'), 'Namespace', 'livelens')])).toEqual([]);
  const claim = pod.spec.volumes.find((v: Loose) => v.persistentVolumeClaim).persistentVolumeClaim.claimName;
  expect(get(objectsOf('production'), 'PersistentVolumeClaim', claim).metadata.name).toBe('livelens-models');
});

it('the topics Job’s script creates every contract topic, prefixed, with the configured settings', async () => {
  // A stand-in kafka-topics.sh that records its arguments: the script's own logic, without a broker.
  const dir = await mkdtemp(join(tmpdir(), 'livelens-k8s-topics-'));
  try {
    await writeFile(
      join(dir, 'kafka-topics.sh'),
      '#!/bin/bash\nprintf "%s\\n" "$*" >> "$(dirname "$0")/calls"\n',
      { mode: 0o755 },
    );
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      KAFKA_BIN: dir,
      KAFKA_BROKERS: 'kafka-0:9092,kafka-1:9092',
      KAFKA_TOPIC_PREFIX: 'staging.',
      TOPIC_PARTITIONS: '12',
      TOPIC_REPLICATION_FACTOR: '3',
      TOPIC_MIN_INSYNC_REPLICAS: '2',
    };
    const { stdout } = await run('bash', [join(k8sDir, 'base', 'topics', 'create-topics.sh')], { env });
    expect(stdout).toContain('topic staging.live.frames.v1: ok');
    const calls = (await readFile(join(dir, 'calls'), 'utf8')).trim().split('\n');
    const creates = calls.filter((c) => c.includes('--create'));
    expect(creates).toEqual(
      [...sources.topics.values()].map(
        (t) =>
          `--bootstrap-server kafka-0:9092,kafka-1:9092 --create --if-not-exists --topic staging.${t.name} ` +
          `--partitions 12 --replication-factor 3 --config retention.ms=${t.retentionMs} ` +
          '--config max.message.bytes=4194304 --config min.insync.replicas=2 ' +
          '--config unclean.leader.election.enable=false',
      ),
    );
    // Without its settings it refuses to run rather than create topics with defaults.
    const { TOPIC_PARTITIONS: _, ...missing } = env;
    await expect(
      run('bash', [join(k8sDir, 'base', 'topics', 'create-topics.sh')], { env: missing }),
    ).rejects.toThrow(/TOPIC_PARTITIONS/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('dev runs one replica of each service', () => {
  const deployments = objectsOf('dev').filter((o) => o.kind === 'Deployment');
  expect(
    deployments.map((d) => [d.metadata.name, (d.spec as { replicas?: number }).replicas]).sort(),
  ).toEqual([
    ['livelens-asr', 1],
    ['livelens-frame-analyzer', 1],
    ['livelens-fusion', 1],
    ['livelens-ingest', 1],
  ]);
});

describe('the checks reject a broken manifest', () => {
  it('kubeconform rejects misspelt fields, wrong types and unknown API versions', async () => {
    const objects = copyOf('production');
    const fa = get(objects, 'Deployment', 'livelens-frame-analyzer');
    const c = fa.spec.template.spec.containers[0];
    c.livenessprobe = c.livenessProbe; // a typo: strict schemas admit no unknown field
    c.readinessProbe.periodSecond = 5;
    fa.spec.template.spec.terminationGracePeriodSeconds = '40'; // a string for an integer
    const so = get(objects, 'ScaledObject', 'livelens-asr');
    so.spec.maxReplicaCount = '8';
    so.spec.lagThreshold = '100'; // belongs in the trigger's metadata
    const old = { ...get(objects, 'PodDisruptionBudget', 'livelens-fusion'), apiVersion: 'policy/v1beta1' };
    const result = await kubeconform(toYaml([fa, so, old]), versions.kubernetes[0]);
    expect(result.code).toBe(1);
    expect(result.summary).toMatchObject({ valid: 0, invalid: 2, errors: 1 });
    const byName = new Map(result.resources.map((r) => [`${r.kind}/${r.name}`, r]));
    // kubeconform reports every violation in the message of the resource.
    const faErrors = byName.get('Deployment/livelens-frame-analyzer')?.msg;
    expect(faErrors).toMatch(/containers\/0': additional properties 'livenessprobe' not allowed/);
    expect(faErrors).toMatch(/readinessProbe': additional properties 'periodSecond' not allowed/);
    expect(faErrors).toMatch(/terminationGracePeriodSeconds': got string, want null or integer/);
    const soErrors = byName.get('ScaledObject/livelens-asr')?.msg;
    expect(soErrors).toMatch(/maxReplicaCount': got string, want integer/);
    expect(soErrors).toMatch(/'\/spec': additional properties 'lagThreshold' not allowed/);
    // policy/v1beta1 PodDisruptionBudget was removed in Kubernetes 1.25: no schema, an error rather than a skip.
    expect(byName.get('PodDisruptionBudget/livelens-fusion')).toMatchObject({ status: 'statusError' });
    expect(byName.get('PodDisruptionBudget/livelens-fusion')?.msg).toMatch(/could not find schema/);
  });

  it('catches a variable the service does not declare, a missing probe and a short grace period', () => {
    const objects = copyOf('production');
    const cm = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('livelens-frame-analyzer-'),
    );
    if (!cm) throw new Error('no frame-analyzer ConfigMap');
    (cm.data as Record<string, string>).FRAME_ANALYZER_BATCH_SIZE = '16'; // it is FRAME_ANALYZER_MAX_BATCH_SIZE
    const c = container(objects, 'asr');
    delete c.readinessProbe;
    c.livenessProbe.httpGet.port = 8080;
    get(objects, 'Deployment', 'livelens-fusion').spec.template.spec.terminationGracePeriodSeconds = 25;
    container(objects, 'ingest').env = [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=512' }];
    expect(checkServices(objects, sources)).toEqual([
      'Deployment/livelens-asr: livenessProbe is /healthz on 8080, expected /healthz on the metrics port',
      'Deployment/livelens-asr: no readinessProbe (httpGet /readyz)',
      'Deployment/livelens-frame-analyzer: sets FRAME_ANALYZER_BATCH_SIZE, which frame-analyzer does not declare',
      'Deployment/livelens-fusion: terminationGracePeriodSeconds 25 s ≤ preStop 5 s + SHUTDOWN_TIMEOUT_MS 25000 ms',
      'Deployment/livelens-ingest: sets NODE_OPTIONS, which ingest does not declare',
    ]);
  });

  it('catches a wrong consumer group, a KEDA metadata typo, too many replicas and two autoscalers', () => {
    const objects = copyOf('production');
    const fa = get(objects, 'ScaledObject', 'livelens-frame-analyzer');
    fa.spec.triggers[0].metadata.consumerGroup = 'frame-analyzer';
    fa.spec.maxReplicaCount = 16;
    const asr = get(objects, 'ScaledObject', 'livelens-asr');
    asr.spec.triggers[0].metadata.lagTreshold = asr.spec.triggers[0].metadata.lagThreshold;
    delete asr.spec.triggers[0].metadata.lagThreshold;
    const fusion = get(objects, 'ScaledObject', 'livelens-fusion');
    fusion.spec.triggers.pop(); // transcripts no longer followed
    objects.push(get(copyOf('production-hpa'), 'HorizontalPodAutoscaler', 'livelens-fusion'));
    expect(checkAutoscaling(objects, sources, 'keda', kafkaKeys)).toEqual([
      'Deployment/livelens-fusion: scaled by ScaledObject/livelens-fusion and HorizontalPodAutoscaler/livelens-fusion',
      "ScaledObject/livelens-asr trigger: KEDA's kafka scaler has no metadata lagTreshold",
      'ScaledObject/livelens-frame-analyzer: replicas 1..16, expected 1 ≤ min ≤ max ≤ 8 partitions',
      'ScaledObject/livelens-frame-analyzer: scales on "frame-analyzer live.frames.v1", which frame-analyzer does not consume',
      'ScaledObject/livelens-frame-analyzer: misses the lag of "livelens-frame-analyzer live.frames.v1"',
      'ScaledObject/livelens-fusion: misses the lag of "livelens-fusion-transcripts live.transcripts.v1"',
    ]);
  });

  it('catches a GPU asked for by a service that runs no model, and CUDA not configured', () => {
    const objects = copyOf('gpu');
    container(objects, 'fusion').resources.limits['nvidia.com/gpu'] = 1;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('livelens-asr-'));
    if (!cm) throw new Error('no asr ConfigMap');
    (cm.data as Record<string, string>).ASR_EXECUTION_PROVIDERS = 'cpu';
    expect(checkGpu(objects, sources, ['frame-analyzer', 'asr'])).toEqual([
      'Deployment/livelens-fusion container fusion: asks for nvidia.com/gpu, but only frame-analyzer, asr should',
      'Deployment/livelens-asr: ASR_EXECUTION_PROVIDERS=cpu, expected cuda,cpu',
    ]);
    // And the CPU overlays ask for none.
    expect(checkGpu(objectsOf('gpu'), sources, [])).toContain(
      'Deployment/livelens-frame-analyzer container frame-analyzer: asks for nvidia.com/gpu, but only none should',
    );
  });

  it('catches topics the services would create in production, and a topic the Job forgets', () => {
    const objects = copyOf('production');
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('livelens-ingest-'));
    if (!cm) throw new Error('no ingest ConfigMap');
    (cm.data as Record<string, string>).INGEST_CREATE_TOPICS = 'true';
    const script = objects.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('livelens-create-topics-'),
    );
    if (!script) throw new Error('no script ConfigMap');
    const data = script.data as Record<string, string>;
    const key = Object.keys(data)[0] as string;
    data[key] = (data[key] as string).replace('live.review.v1 2592000000\n', '');
    expect(checkTopics(objects, sources, 'pre-created')).toEqual([
      'Deployment/livelens-ingest: INGEST_CREATE_TOPICS=true, expected false',
      'Job/livelens-create-topics: live.review.v1 created with retention undefined, contract 2592000000',
    ]);
  });

  it('catches a root or privileged container and an object outside the namespace', () => {
    const objects = copyOf('dev');
    const pod = get(objects, 'Deployment', 'livelens-ingest').spec.template.spec;
    pod.securityContext.runAsNonRoot = false;
    pod.containers[0].securityContext.readOnlyRootFilesystem = false;
    get(objects, 'Service', 'livelens-asr').metadata.namespace = 'default';
    expect(checkPodSecurity(objects)).toEqual([
      'Deployment/livelens-ingest: pod not runAsNonRoot with seccompProfile RuntimeDefault',
      'Deployment/livelens-ingest container ingest: not (allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL)',
    ]);
    expect(checkNamespace(objects)).toEqual(['Service/livelens-asr: namespace default, expected livelens']);
  });
});

it('turns a CRD schema into a strict JSON schema', () => {
  expect(
    strictSchema({
      type: 'object',
      properties: {
        spec: { type: 'object', properties: { n: { 'x-kubernetes-int-or-string': true } } },
        free: {
          type: 'object',
          properties: { a: { type: 'string', nullable: true } },
          'x-kubernetes-preserve-unknown-fields': true,
        },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
      },
    }),
  ).toEqual({
    type: 'object',
    additionalProperties: false,
    properties: {
      spec: {
        type: 'object',
        additionalProperties: false,
        properties: {
          n: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
        },
      },
      free: {
        type: 'object',
        properties: { a: { type: ['string', 'null'], nullable: true } },
        'x-kubernetes-preserve-unknown-fields': true,
      },
      labels: { type: 'object', additionalProperties: { type: 'string' } },
    },
  });
});
