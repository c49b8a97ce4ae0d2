import type { K8sObject } from './render.js';
import { metricPrefix, type ServiceSource, type Sources } from './sources.js';
import type { KafkaScalerKeys } from './tools.js';

// LiveLens' own rules for its manifests, beyond what the Kubernetes schemas check. Each check takes the objects
// of one rendered overlay and returns its problems, one line each (empty = fine), so a test can show both that
// the shipped manifests pass and that a broken one is caught.

// Loose shapes of the parts the checks read (the schemas have already vouched for the rest).
interface Probe {
  httpGet?: { path?: string; port?: string | number };
}
interface Container {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string; optional?: boolean } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds?: number } } };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type?: string } };
  volumes?: {
    name: string;
    emptyDir?: unknown;
    persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  }[];
  nodeSelector?: Record<string, string>;
  tolerations?: { key?: string; operator?: string; effect?: string }[];
}
interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: PodSpec;
}

/** The LiveLens namespace every overlay deploys into. */
export const NAMESPACE = 'livelens';
/** The non-root uid of the service images (services/<name>/Dockerfile). */
export const SERVICE_UID = 10001;
const GPU = 'nvidia.com/gpu';

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
export const deploymentName = (service: string) => `livelens-${service}`;

function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

function podTemplate(o: K8sObject): PodTemplate | undefined {
  if (o.kind === 'Pod') return { metadata: o.metadata, spec: o.spec as PodSpec };
  const spec = o.spec as
    | { template?: PodTemplate; jobTemplate?: { spec: { template: PodTemplate } } }
    | undefined;
  return spec?.template ?? spec?.jobTemplate?.spec.template;
}

function serviceContainer(objects: readonly K8sObject[], service: string): Container | undefined {
  const d = find(objects, 'Deployment', deploymentName(service));
  return d ? podTemplate(d)?.spec.containers.find((c) => c.name === service) : undefined;
}

/**
 * What a container's environment holds: its ConfigMaps' keys in envFrom order, then `env` (a later source wins,
 * as in the kubelet). A value from a Secret or a valueFrom is unknown here (undefined).
 */
export function containerEnv(
  objects: readonly K8sObject[],
  container: Container,
): Map<string, string | undefined> {
  const env = new Map<string, string | undefined>();
  for (const source of container.envFrom ?? []) {
    if (!source.configMapRef) continue;
    const cm = find(objects, 'ConfigMap', source.configMapRef.name);
    for (const [k, v] of Object.entries((cm?.data as Record<string, string> | undefined) ?? {}))
      env.set(k, v);
  }
  for (const e of container.env ?? [])
    env.set(e.name, e.valueFrom === undefined ? (e.value ?? '') : undefined);
  return env;
}

/** A variable's effective value: what the container sets (empty = default, as the services read it), else the default. */
function effective(env: ReadonlyMap<string, string | undefined>, service: ServiceSource, name: string) {
  const set = env.get(name);
  return set === undefined || set === '' ? service.fields.get(name)?.default : set;
}

/** A probe's or Service's port, by name or number, as a number (undefined when it resolves to nothing). */
function resolvePort(container: Container, port: string | number | undefined): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) {
  return Boolean(selector) && Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

/**
 * Each service's Deployment, Service and PodDisruptionBudget: the probes, the ports, the resources, the graceful
 * shutdown, the models volume, and every variable it sets being one the service declares.
 */
export function checkServices(objects: readonly K8sObject[], sources: Sources): string[] {
  const problems: string[] = [];
  for (const service of sources.services.values()) {
    const name = deploymentName(service.name);
    const deployment = find(objects, 'Deployment', name);
    const template = deployment && podTemplate(deployment);
    const c = serviceContainer(objects, service.name);
    if (!deployment || !template || !c) {
      problems.push(`Deployment/${name}: missing, or no container named ${service.name}`);
      continue;
    }
    const at = `Deployment/${name}`;
    if (!c.image?.startsWith(`livelens/${service.name}:`) && !c.image?.includes(`/livelens/${service.name}:`))
      problems.push(`${at}: image ${c.image} is not livelens/${service.name}:<tag>`);

    // Every variable set is one the service reads: its config fields (shared ones included), or the models
    // directory of packages/inference for the services that load models.
    const env = containerEnv(objects, c);
    const allowed = new Set([...service.fields.keys(), ...service.extraVariables]);
    for (const variable of env.keys())
      if (!allowed.has(variable))
        problems.push(`${at}: sets ${variable}, which ${service.name} does not declare`);
    for (const source of c.envFrom ?? [])
      if (source.configMapRef && !find(objects, 'ConfigMap', source.configMapRef.name))
        problems.push(`${at}: envFrom ConfigMap ${source.configMapRef.name} does not exist`);

    // Probes on the metrics port, which is METRICS_PORT.
    const metricsPort = Number(effective(env, service, 'METRICS_PORT'));
    const named = c.ports?.find((p) => p.name === 'metrics')?.containerPort;
    if (named !== metricsPort)
      problems.push(`${at}: port "metrics" is ${named}, METRICS_PORT is ${metricsPort}`);
    const probes = {
      livenessProbe: '/healthz',
      readinessProbe: '/readyz',
      startupProbe: '/healthz',
    } as const;
    for (const [probe, path] of Object.entries(probes) as [keyof typeof probes, string][]) {
      const get = c[probe]?.httpGet;
      if (!get) problems.push(`${at}: no ${probe} (httpGet ${path})`);
      else if (get.path !== path || resolvePort(c, get.port) !== metricsPort)
        problems.push(`${at}: ${probe} is ${get.path} on ${get.port}, expected ${path} on the metrics port`);
    }

    // Resources: requests for scheduling, a memory limit (model workers grow; an OOM kill beats a starved node).
    for (const r of ['cpu', 'memory'])
      if (c.resources?.requests?.[r] === undefined) problems.push(`${at}: no ${r} request`);
    if (c.resources?.limits?.memory === undefined) problems.push(`${at}: no memory limit`);

    // The kubelet's SIGKILL comes after the grace period: the drain (SHUTDOWN_TIMEOUT_MS) and preStop fit in it.
    const shutdownMs = Number(effective(env, service, 'SHUTDOWN_TIMEOUT_MS'));
    const preStopS = c.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const graceS = template.spec.terminationGracePeriodSeconds ?? 30;
    if (!(graceS * 1000 > shutdownMs + preStopS * 1000))
      problems.push(
        `${at}: terminationGracePeriodSeconds ${graceS} s ≤ preStop ${preStopS} s + SHUTDOWN_TIMEOUT_MS ${shutdownMs} ms`,
      );

    // gRPC: the container port "grpc" is the service's *_GRPC_PORT, and its Service exposes it.
    const grpcVariable = [...service.fields.keys()].find((v) => v.endsWith('_GRPC_PORT'));
    const grpcPort = grpcVariable ? Number(effective(env, service, grpcVariable)) : undefined;
    const grpcContainerPort = c.ports?.find((p) => p.name === 'grpc')?.containerPort;
    if (grpcContainerPort !== grpcPort)
      problems.push(
        `${at}: port "grpc" is ${grpcContainerPort}, ${grpcVariable ?? 'no *_GRPC_PORT'} is ${grpcPort}`,
      );

    // A Service over the pods: the metrics port, annotated for Prometheus; the gRPC port where there is one.
    const svc = find(objects, 'Service', name);
    const spec = svc?.spec as
      | {
          selector?: Record<string, string>;
          ports?: { name?: string; port: number; targetPort?: string | number }[];
        }
      | undefined;
    if (!svc || !selects(spec?.selector, template.metadata?.labels))
      problems.push(`Service/${name}: missing or selects no pod`);
    else {
      const annotations = (svc.metadata.annotations ?? {}) as Record<string, string>;
      if (
        annotations['prometheus.io/scrape'] !== 'true' ||
        Number(annotations['prometheus.io/port']) !== metricsPort
      )
        problems.push(
          `Service/${name}: prometheus.io/scrape or prometheus.io/port does not name the metrics port`,
        );
      for (const [portName, want] of [
        ['metrics', metricsPort],
        ['grpc', grpcPort],
      ] as const) {
        const port = spec?.ports?.find((p) => p.name === portName);
        const target = port && resolvePort(c, port.targetPort ?? port.port);
        if (want !== undefined && target !== want)
          problems.push(`Service/${name}: port ${portName} reaches ${target}, not ${want}`);
        if (want === undefined && port)
          problems.push(`Service/${name}: port ${portName}, but the service serves none`);
      }
    }

    const pdb = find(objects, 'PodDisruptionBudget', name);
    const pdbSpec = pdb?.spec as {
      maxUnavailable?: number | string;
      selector?: { matchLabels?: Record<string, string> };
    };
    if (
      !pdb ||
      pdbSpec.maxUnavailable !== 1 ||
      !selects(pdbSpec.selector?.matchLabels, template.metadata?.labels)
    )
      problems.push(`PodDisruptionBudget/${name}: missing, not maxUnavailable 1, or selects no pod`);

    // Models: the read-only PVC at the directory the service reads them from (its own *_MODELS_DIR, else
    // LIVELENS_MODELS_DIR: packages/inference/src/resolve.ts).
    if (service.usesModels) {
      const own = [...service.fields.keys()].find((v) => v.endsWith('_MODELS_DIR'));
      const dir = (own && env.get(own)) || env.get('LIVELENS_MODELS_DIR');
      const mount = c.volumeMounts?.find((m) => m.mountPath === dir);
      const volume = template.spec.volumes?.find((v) => v.name === mount?.name);
      const claim = volume?.persistentVolumeClaim;
      if (
        !dir ||
        !mount?.readOnly ||
        !claim?.readOnly ||
        !find(objects, 'PersistentVolumeClaim', claim.claimName)
      )
        problems.push(`${at}: the models directory (${dir}) is not a read-only mount of an existing PVC`);
    }
  }
  return problems;
}

/**
 * Every pod of every workload meets the "restricted" Pod Security Standard's core (non-root, no privilege
 * escalation, no capabilities, RuntimeDefault seccomp) and runs on a read-only root filesystem with /tmp on an
 * emptyDir; the services run as uid 10001.
 */
export function checkPodSecurity(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const template = podTemplate(o);
    if (!template) continue;
    const pod = template.spec.securityContext;
    if (pod?.runAsNonRoot !== true || pod.seccompProfile?.type !== 'RuntimeDefault')
      problems.push(`${id(o)}: pod not runAsNonRoot with seccompProfile RuntimeDefault`);
    if (o.kind === 'Deployment' && pod?.runAsUser !== SERVICE_UID)
      problems.push(`${id(o)}: runAsUser is not ${SERVICE_UID}`);
    for (const c of [...(template.spec.initContainers ?? []), ...template.spec.containers]) {
      const s = c.securityContext;
      if (
        s?.allowPrivilegeEscalation !== false ||
        s.readOnlyRootFilesystem !== true ||
        !s.capabilities?.drop?.includes('ALL')
      )
        problems.push(
          `${id(o)} container ${c.name}: not (allowPrivilegeEscalation false, readOnlyRootFilesystem, drop ALL)`,
        );
      const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
      if (!template.spec.volumes?.find((v) => v.name === tmp?.name)?.emptyDir)
        problems.push(`${id(o)} container ${c.name}: /tmp is not an emptyDir`);
    }
  }
  return problems;
}

/** Every namespaced object is in the LiveLens namespace, which the overlay creates, and carries part-of. */
export function checkNamespace(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  const namespaces = objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name);
  if (namespaces.join() !== NAMESPACE)
    problems.push(`Namespace: ${namespaces.join() || 'none'}, expected ${NAMESPACE}`);
  for (const o of objects) {
    if (o.kind !== 'Namespace' && o.metadata.namespace !== NAMESPACE)
      problems.push(`${id(o)}: namespace ${o.metadata.namespace}, expected ${NAMESPACE}`);
    if (o.metadata.labels?.['app.kubernetes.io/part-of'] !== 'livelens')
      problems.push(`${id(o)}: no part-of label`);
  }
  return problems;
}

/** How an overlay gets its topics. */
export type TopicsMode = 'pre-created' | 'services-create';

/** The topic lines (`name retention_ms`) of the create-topics script. */
export function scriptTopics(script: string): Map<string, number> {
  const body = /<<'TOPICS'\n([\s\S]*?)\nTOPICS\n/.exec(script)?.[1] ?? '';
  return new Map(
    body
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [name, retention] = line.trim().split(/\s+/);
        return [name as string, Number(retention)] as const;
      }),
  );
}

/**
 * Production pre-creates the topics (every *_CREATE_TOPICS false, the Job there, its script creating exactly
 * the contract's topics with their retention); dev lets the services create them (every one true, no Job).
 */
export function checkTopics(objects: readonly K8sObject[], sources: Sources, mode: TopicsMode): string[] {
  const problems: string[] = [];
  for (const service of sources.services.values()) {
    const c = serviceContainer(objects, service.name);
    const variable = [...service.fields.keys()].find((v) => v.endsWith('_CREATE_TOPICS'));
    if (!c || !variable) {
      problems.push(`${service.name}: no container or no *_CREATE_TOPICS`);
      continue;
    }
    const value = effective(containerEnv(objects, c), service, variable);
    const want = mode === 'pre-created' ? 'false' : 'true';
    if (value !== want)
      problems.push(`Deployment/${deploymentName(service.name)}: ${variable}=${value}, expected ${want}`);
  }
  const job = find(objects, 'Job', 'livelens-create-topics');
  if (mode === 'services-create') {
    if (job) problems.push('Job/livelens-create-topics: present, but the services create the topics');
    return problems;
  }
  const template = job && podTemplate(job);
  const volume = template?.spec.volumes?.find((v) => (v as { configMap?: unknown }).configMap);
  const cmName = (volume as { configMap?: { name: string } } | undefined)?.configMap?.name;
  const script = Object.values(
    (find(objects, 'ConfigMap', cmName ?? '')?.data as Record<string, string>) ?? {},
  )[0];
  if (!script) return [...problems, 'Job/livelens-create-topics: missing, or its script ConfigMap is'];
  const created = scriptTopics(script);
  const contract = new Map([...sources.topics.values()].map((t) => [t.name, t.retentionMs]));
  for (const [name, retention] of contract)
    if (created.get(name) !== retention)
      problems.push(
        `Job/livelens-create-topics: ${name} created with retention ${created.get(name)}, contract ${retention}`,
      );
  for (const name of created.keys())
    if (!contract.has(name)) problems.push(`Job/livelens-create-topics: creates unknown topic ${name}`);
  return problems;
}

/** Which autoscaler an overlay applies to the consumer stages. */
export type Autoscaler = 'keda' | 'hpa' | 'none';

/** The partitions of the input topics: the Job's TOPIC_PARTITIONS when it creates them, else the services'. */
function partitions(objects: readonly K8sObject[], service: ServiceSource): number {
  const job = find(objects, 'Job', 'livelens-create-topics');
  const c = job && podTemplate(job)?.spec.containers[0];
  const fromJob = c && containerEnv(objects, c).get('TOPIC_PARTITIONS');
  if (fromJob) return Number(fromJob);
  const container = serviceContainer(objects, service.name);
  const variable = [...service.fields.keys()].find((v) => v.endsWith('_TOPIC_PARTITIONS')) ?? '';
  return Number(container ? effective(containerEnv(objects, container), service, variable) : undefined);
}

/** The consumer loops an autoscaler must follow: all but the ends of sessions (a trickle, never a backlog). */
const scaledConsumers = (service: ServiceSource) =>
  service.consumers.filter((c) => c.role !== 'streamEvents');

/** The topic prefix of the deployment (KAFKA_TOPIC_PREFIX of the service's container). */
function topicPrefix(objects: readonly K8sObject[], service: ServiceSource): string {
  const c = serviceContainer(objects, service.name);
  return (c && containerEnv(objects, c).get('KAFKA_TOPIC_PREFIX')) || '';
}

/**
 * Autoscaling: exactly the consumer stages scale (ingest shares streams through Redis leases and has no lag),
 * with one autoscaler each (never a ScaledObject and an HPA together), within the input topic's partitions, on
 * the consumer groups and topics the services really use; a scaled Deployment leaves `replicas` to it.
 */
export function checkAutoscaling(
  objects: readonly K8sObject[],
  sources: Sources,
  expected: Autoscaler,
  kafkaKeys: KafkaScalerKeys,
): string[] {
  const problems: string[] = [];
  const scaledObjects = objects.filter((o) => o.kind === 'ScaledObject');
  const hpas = objects.filter((o) => o.kind === 'HorizontalPodAutoscaler');
  const targets = new Map<string, K8sObject[]>();
  for (const o of [...scaledObjects, ...hpas]) {
    const name = (o.spec as { scaleTargetRef?: { name?: string } }).scaleTargetRef?.name ?? '';
    targets.set(name, [...(targets.get(name) ?? []), o]);
  }
  for (const [target, by] of targets) {
    if (by.length > 1) problems.push(`Deployment/${target}: scaled by ${by.map(id).join(' and ')}`);
    const d = find(objects, 'Deployment', target);
    if (!d) problems.push(`${by.map(id).join()}: target Deployment/${target} does not exist`);
    else if ((d.spec as { replicas?: number }).replicas !== undefined)
      problems.push(`Deployment/${target}: sets replicas, which ${by.map(id).join()} owns`);
  }
  for (const service of sources.services.values()) {
    const name = deploymentName(service.name);
    const by = targets.get(name) ?? [];
    const wanted = expected !== 'none' && scaledConsumers(service).length > 0;
    const kind = expected === 'keda' ? 'ScaledObject' : 'HorizontalPodAutoscaler';
    if (!wanted) {
      if (by.length > 0)
        problems.push(`Deployment/${name}: scaled by ${by.map(id).join()}, expected no autoscaler`);
      continue;
    }
    const scaler = by.find((o) => o.kind === kind);
    if (!scaler) {
      problems.push(`Deployment/${name}: no ${kind}`);
      continue;
    }
    const max = partitions(objects, service);
    const prefix = topicPrefix(objects, service);
    const c = serviceContainer(objects, service.name);
    const env = c ? containerEnv(objects, c) : new Map<string, string | undefined>();
    // The group the service uses must be the default one the autoscaler names.
    for (const consumer of service.consumers) {
      const group = effective(env, service, consumer.groupVariable);
      if (`${group}${consumer.groupSuffix}` !== consumer.defaultGroup)
        problems.push(`Deployment/${name}: ${consumer.groupVariable}=${group}, not its default`);
    }
    const wantedInputs = new Set(
      scaledConsumers(service).map((c) => `${c.defaultGroup} ${prefix}${c.topic}`),
    );
    const seen = new Set<string>();
    if (scaler.kind === 'ScaledObject') {
      const spec = scaler.spec as {
        minReplicaCount?: number;
        maxReplicaCount?: number;
        scaleTargetRef: { envSourceContainerName?: string };
        triggers: { type: string; metadata: Record<string, string> }[];
      };
      const min = spec.minReplicaCount ?? 0;
      const maxReplicas = spec.maxReplicaCount ?? 100;
      if (!(min >= 1 && min <= maxReplicas && maxReplicas <= max))
        problems.push(
          `${id(scaler)}: replicas ${min}..${maxReplicas}, expected 1 ≤ min ≤ max ≤ ${max} partitions`,
        );
      for (const t of spec.triggers) {
        if (t.type !== 'kafka') {
          problems.push(`${id(scaler)}: trigger ${t.type}, expected kafka`);
          continue;
        }
        problems.push(...kafkaMetadataProblems(`${id(scaler)} trigger`, t.metadata, kafkaKeys, env));
        seen.add(`${t.metadata.consumerGroup} ${t.metadata.topic}`);
      }
    } else {
      const spec = scaler.spec as {
        minReplicas?: number;
        maxReplicas: number;
        scaleTargetRef: { apiVersion?: string; kind?: string };
        metrics?: {
          type: string;
          external?: { metric: { name: string; selector?: { matchLabels?: Record<string, string> } } };
        }[];
      };
      const min = spec.minReplicas ?? 1;
      if (!(min >= 1 && min <= spec.maxReplicas && spec.maxReplicas <= max))
        problems.push(
          `${id(scaler)}: replicas ${min}..${spec.maxReplicas}, expected 1 ≤ min ≤ max ≤ ${max} partitions`,
        );
      if (spec.scaleTargetRef.kind !== 'Deployment' || spec.scaleTargetRef.apiVersion !== 'apps/v1')
        problems.push(`${id(scaler)}: scaleTargetRef is not an apps/v1 Deployment`);
      const metric = `${metricPrefix(service.name)}${sources.lagMetric.suffix}`;
      for (const m of spec.metrics ?? []) {
        const labels = m.external?.metric.selector?.matchLabels ?? {};
        if (m.type !== 'External' || m.external?.metric.name !== metric) {
          problems.push(
            `${id(scaler)}: metric ${m.external?.metric.name ?? m.type}, expected External ${metric}`,
          );
          continue;
        }
        for (const label of Object.keys(labels))
          if (!sources.lagMetric.labelNames.includes(label))
            problems.push(`${id(scaler)}: ${metric} has no label ${label}`);
        // The gauge's series carry the topic; the group is the service's (one group per topic and service).
        const consumer = scaledConsumers(service).find((c) => `${prefix}${c.topic}` === labels.topic);
        seen.add(`${consumer?.defaultGroup} ${labels.topic}`);
      }
    }
    for (const input of seen)
      if (!wantedInputs.has(input))
        problems.push(`${id(scaler)}: scales on "${input}", which ${service.name} does not consume`);
    for (const input of wantedInputs)
      if (!seen.has(input)) problems.push(`${id(scaler)}: misses the lag of "${input}"`);
  }
  return problems;
}

/** A kafka trigger's metadata against KEDA's own declaration of it (pkg/scalers/kafka_scaler.go). */
function kafkaMetadataProblems(
  at: string,
  metadata: Record<string, string>,
  keys: KafkaScalerKeys,
  env: ReadonlyMap<string, string | undefined>,
): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(metadata)) {
    const base = key.endsWith('FromEnv') ? key.slice(0, -'FromEnv'.length) : key;
    const type = keys.triggerMetadata[base];
    if (!type || (base !== key && !keys.fromEnv.includes(base))) {
      problems.push(`${at}: KEDA's kafka scaler has no metadata ${key}`);
      continue;
    }
    if (base !== key) {
      if (!env.get(value))
        problems.push(`${at}: ${key} names ${value}, which the target container does not set`);
      continue;
    }
    if (type === 'int64' && !/^-?\d+$/.test(value)) problems.push(`${at}: ${key}=${value} is not an integer`);
    if (type === 'bool' && !/^(true|false)$/.test(value))
      problems.push(`${at}: ${key}=${value} is not true or false`);
    const allowed = keys.enums[key];
    if (allowed && !allowed.includes(value))
      problems.push(`${at}: ${key}=${value} is not one of ${allowed.join(', ')}`);
  }
  for (const key of keys.required)
    if (metadata[key] === undefined && metadata[`${key}FromEnv`] === undefined)
      problems.push(`${at}: no ${key}`);
  if (!metadata.topic) problems.push(`${at}: no topic (KEDA would sum the group's lag over every topic)`);
  return problems;
}

/**
 * GPUs: exactly `gpuServices` ask for one nvidia.com/gpu (limits), land on GPU nodes and try CUDA first; every
 * other container asks for none and runs its models on CPU.
 */
export function checkGpu(
  objects: readonly K8sObject[],
  sources: Sources,
  gpuServices: readonly string[],
): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const template = podTemplate(o);
    for (const c of template?.spec.containers ?? []) {
      const wanted =
        o.kind === 'Deployment' && gpuServices.some((s) => deploymentName(s) === o.metadata.name);
      const limit = c.resources?.limits?.[GPU];
      const request = c.resources?.requests?.[GPU];
      if (wanted) {
        if (Number(limit) !== 1)
          problems.push(`${id(o)} container ${c.name}: ${GPU} limit ${limit}, expected 1`);
        if (request !== undefined && Number(request) !== Number(limit))
          problems.push(`${id(o)} container ${c.name}: ${GPU} request differs from its limit`);
        const spec = template?.spec;
        if (!Object.keys(spec?.nodeSelector ?? {}).some((k) => k.startsWith('nvidia.com/')))
          problems.push(`${id(o)}: no nodeSelector for GPU nodes`);
        if (!spec?.tolerations?.some((t) => t.key === GPU))
          problems.push(`${id(o)}: no toleration of ${GPU}`);
      } else if (limit !== undefined || request !== undefined) {
        problems.push(
          `${id(o)} container ${c.name}: asks for ${GPU}, but only ${gpuServices.join(', ') || 'none'} should`,
        );
      }
    }
  }
  for (const service of sources.services.values()) {
    const variable = [...service.fields.keys()].find((v) => v.endsWith('_EXECUTION_PROVIDERS'));
    const c = serviceContainer(objects, service.name);
    if (!variable || !c) continue;
    const value = effective(containerEnv(objects, c), service, variable);
    const want = gpuServices.includes(service.name) ? 'cuda,cpu' : 'cpu';
    if (value !== want)
      problems.push(`Deployment/${deploymentName(service.name)}: ${variable}=${value}, expected ${want}`);
  }
  for (const s of gpuServices)
    if (!sources.services.get(s)?.usesModels) problems.push(`${s}: on a GPU, but it runs no model`);
  return problems;
}
