// `npm run tools -w @livelens/deploy-k8s`: builds or fetches the render and validation tools (as the tests'
// global setup does), then prints where they are, e.g. to run kustomize or kubeconform by hand.
import { ensureTools, kubeconformBin, kustomizeBin, schemaLocations, versions } from './tools.js';

await ensureTools((line) => console.log(line));
console.log(`kustomize ${versions.kustomize.version}: ${kustomizeBin}`);
console.log(`kubeconform ${versions.kubeconform.version}: ${kubeconformBin}`);
for (const location of schemaLocations) console.log(`-schema-location '${location}'`);
