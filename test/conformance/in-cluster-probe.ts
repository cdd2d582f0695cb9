// Run by the process kubelet inside a Pod (cluster.test.ts, image `wsgate.test/in-cluster`): reads the credentials a
// kubelet gives every Pod — KUBERNETES_SERVICE_HOST/PORT and the kube-api-access projected volume at
// /var/run/secrets/kubernetes.io/serviceaccount — and asks the API server for its own Pod, the way an in-cluster
// client (wsgate controller without --kubeconfig) would. Prints `HTTP <status> <message>`; exits 0 if the API server
// authenticated the token (any answer but 401), 1 otherwise.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';

const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
const token = readFileSync(`${dir}/token`, 'utf8');
const ca = readFileSync(`${dir}/ca.crt`, 'utf8');
const namespace = readFileSync(`${dir}/namespace`, 'utf8');
const host = process.env.KUBERNETES_SERVICE_HOST ?? '';
const port = process.env.KUBERNETES_SERVICE_PORT ?? '';
const pod = process.env.HOSTNAME ?? '';

const req = request({ host, port, ca, path: `/api/v1/namespaces/${namespace}/pods/${pod}`, headers: { authorization: `Bearer ${token}` } }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c: string) => { body += c; });
  res.on('end', () => {
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      // not JSON
    }
    console.log(`HTTP ${res.statusCode ?? 0} ${message}`);
    process.exit(res.statusCode === 401 ? 1 : 0);
  });
});
req.on('error', (err) => {
  console.log(`error ${err.message}`);
  process.exit(1);
});
req.end();
