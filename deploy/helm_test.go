//go:build helm

package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"paysaga/config"
)

// The Helm chart's checks, run by `make helm-check` (build tag helm): helm and kubeconform
// built into bin/, the Kubernetes schemas generated offline by deploy/kubeschema into
// PAYSAGA_KUBE_SCHEMAS. A missing tool fails the tests.

const chart = "helm/paysaga"

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "bin", name))
	require.NoError(t, err)
	_, err = os.Stat(p)
	require.NoError(t, err, "%s is missing: run `make helm-check`", p)
	return p
}

func schemaLocation(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PAYSAGA_KUBE_SCHEMAS")
	require.NotEmpty(t, dir, "PAYSAGA_KUBE_SCHEMAS is not set: run `make helm-check`")
	_, err := os.Stat(filepath.Join(dir, "deployment-apps-v1.json"))
	require.NoError(t, err, "no generated schemas in %s: run `make helm-check`", dir)
	return filepath.Join(dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")
}

func run(t *testing.T, stdin []byte, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func kubeconform(t *testing.T, manifests []byte) (string, error) {
	return run(t, manifests, tool(t, "kubeconform"), "-strict", "-summary", "-schema-location", schemaLocation(t), "-")
}

func render(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(tool(t, "helm"), append([]string{"template", "paysaga", chart, "--kube-version", makeVar(t, "KUBERNETES_VERSION")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

type manifest = map[string]any

func docs(t *testing.T, b []byte) []manifest {
	t.Helper()
	var out []manifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if m != nil {
			out = append(out, m)
		}
	}
}

func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

func find(ms []manifest, kind, name string) manifest {
	for _, m := range ms {
		if str(m, "kind") == kind && str(m, "metadata", "name") == name {
			return m
		}
	}
	return nil
}

var valuesFiles = []string{"minimal", "temporal-cloud-mtls", "autoscaling"}

func TestHelmChartLintsAndRendersValidManifests(t *testing.T) {
	for _, name := range valuesFiles {
		t.Run(name, func(t *testing.T) {
			values := filepath.Join("helm", "values", name+".yaml")
			out, err := run(t, nil, tool(t, "helm"), "lint", "--strict", "--kube-version", makeVar(t, "KUBERNETES_VERSION"), chart, "-f", values)
			require.NoError(t, err, out)
			rendered, err := render(t, "-f", values)
			require.NoError(t, err)
			out, err = kubeconform(t, rendered)
			require.NoError(t, err, "kubeconform -strict: %s", out)
			require.Contains(t, out, "Invalid: 0, Errors: 0, Skipped: 0")

			ms := docs(t, rendered)
			api, worker := find(ms, "Deployment", "paysaga-api"), find(ms, "Deployment", "paysaga-worker")
			require.NotNil(t, api)
			require.NotNil(t, worker)
			require.NotNil(t, find(ms, "Service", "paysaga-api"))
			require.NotNil(t, find(ms, "PodDisruptionBudget", "paysaga-api"))
			require.NotNil(t, find(ms, "PodDisruptionBudget", "paysaga-worker"))
			require.Nil(t, find(ms, "Service", "paysaga-worker"), "the worker receives no traffic")
			autoscaled := name == "autoscaling"
			require.Equal(t, autoscaled, find(ms, "HorizontalPodAutoscaler", "paysaga-api") != nil)
			require.Equal(t, autoscaled, find(ms, "HorizontalPodAutoscaler", "paysaga-worker") != nil)
			require.Equal(t, autoscaled, get(api, "spec", "replicas") == nil, "an autoscaled Deployment leaves replicas to the HPA")

			job := find(ms, "Job", "paysaga-migrate")
			require.NotNil(t, job)
			require.Equal(t, "pre-install,pre-upgrade", str(job, "metadata", "annotations", "helm.sh/hook"))
			for _, kind := range []string{"ConfigMap"} {
				cm := find(ms, kind, "paysaga-config")
				require.NotNil(t, cm)
				require.Equal(t, "pre-install,pre-upgrade", str(cm, "metadata", "annotations", "helm.sh/hook"), "the migration hook reads it")
			}

			// Every pod: non-root, read-only root file system, no privilege, requests and limits.
			for _, d := range []manifest{api, worker, job} {
				pod := get(d, "spec", "template", "spec")
				require.Equal(t, true, get(pod, "securityContext", "runAsNonRoot"), str(d, "metadata", "name"))
				for _, c := range get(pod, "containers").([]any) {
					require.Equal(t, true, get(c, "securityContext", "readOnlyRootFilesystem"))
					require.Equal(t, false, get(c, "securityContext", "allowPrivilegeEscalation"))
					require.NotNil(t, get(c, "resources", "requests", "memory"))
					require.NotNil(t, get(c, "resources", "limits", "memory"))
				}
			}
			// Probes on the endpoints the processes serve; the worker's on PAYSAGA_WORKER_HTTP_ADDR.
			for d, portVar := range map[string]string{"paysaga-api": "PAYSAGA_HTTP_ADDR", "paysaga-worker": "PAYSAGA_WORKER_HTTP_ADDR"} {
				c := get(find(ms, "Deployment", d), "spec", "template", "spec", "containers").([]any)[0]
				require.Equal(t, "/readyz", str(c, "readinessProbe", "httpGet", "path"), d)
				require.Equal(t, "/healthz", str(c, "livenessProbe", "httpGet", "path"), d)
				portName := str(c, "readinessProbe", "httpGet", "port")
				port := get(c, "ports").([]any)[0]
				require.Equal(t, portName, str(port, "name"))
				require.Equal(t, ":"+strings.TrimSpace(yamlScalar(get(port, "containerPort"))), envValue(c, portVar), d)
			}

			// What each process needs is set: the ConfigMap, the Secret (when the chart makes
			// it), the container's env.
			settings := map[string]string{}
			for k, v := range get(find(ms, "ConfigMap", "paysaga-config"), "data").(map[string]any) {
				settings[k] = v.(string)
			}
			if s := find(ms, "Secret", "paysaga-secrets"); s != nil {
				for k, v := range get(s, "stringData").(map[string]any) {
					settings[k] = v.(string)
				}
			} else {
				// An existing Secret: its keys are the operator's; stand in for them.
				for _, v := range config.Vars {
					if v.Secret && len(v.Services) > 0 {
						settings[v.Name] = "from-the-existing-secret-0123456789abcdef0123456789abcdef"
					}
				}
				settings["PAYSAGA_ACCOUNT_KEYS"] = "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,hmac:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
				settings["PAYSAGA_TEMPORAL_PAYLOAD_KEYS"] = "p1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
			}
			for proc, d := range map[string]manifest{"api": api, "worker": worker} {
				c := get(d, "spec", "template", "spec", "containers").([]any)[0]
				env := map[string]string{}
				for k, v := range settings {
					env[k] = v
				}
				for _, e := range get(c, "env").([]any) {
					env[str(e, "name")] = str(e, "value")
				}
				require.NoError(t, config.Require(func(k string) string { return env[k] }, proc))
				_, err := config.Load(func(k string) string { return env[k] })
				require.NoError(t, err, "%s's settings do not load", proc)
				if name == "temporal-cloud-mtls" {
					require.Equal(t, "/etc/paysaga/temporal-tls/tls.crt", env["PAYSAGA_TEMPORAL_TLS_CERT"])
					require.Equal(t, "/etc/paysaga/temporal-tls/tls.key", env["PAYSAGA_TEMPORAL_TLS_KEY"])
					require.Contains(t, envValue(c, "PAYSAGA_TEMPORAL_TLS"), "true")
					require.Equal(t, "temporal-cloud-client", str(get(d, "spec", "template", "spec", "volumes").([]any)[1], "secret", "secretName"))
				}
			}

			// Only the API receives traffic.
			deny := find(ms, "NetworkPolicy", "paysaga-deny-ingress")
			require.NotNil(t, deny)
			require.Nil(t, get(deny, "spec", "ingress"), "everything of the release is closed by default")
			open := find(ms, "NetworkPolicy", "paysaga-api")
			require.Equal(t, "api", str(open, "spec", "podSelector", "matchLabels", "app.kubernetes.io/component"))
		})
	}
}

func yamlScalar(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

func envValue(c any, name string) string {
	for _, e := range get(c, "env").([]any) {
		if str(e, "name") == name {
			return str(e, "value")
		}
	}
	return ""
}

func TestHelmChartRefusesAReleaseWithoutItsSecrets(t *testing.T) {
	_, err := render(t, "--set", "temporal.address=t:7233")
	require.ErrorContains(t, err, "secrets.PAYSAGA_DB_DSN is required")
	_, err = render(t, "-f", filepath.Join("helm", "values", "minimal.yaml"), "--set", "temporal.apiKey=true")
	require.ErrorContains(t, err, "PAYSAGA_TEMPORAL_API_KEY")
	_, err = render(t, "-f", filepath.Join("helm", "values", "minimal.yaml"), "--set", "config.PAYSAGA_NH_ISCD=")
	require.ErrorContains(t, err, "config.PAYSAGA_NH_ISCD is required")
}

// The validation can fail: kubeconform with the generated schemas rejects an unknown field and
// a replica count written as a string, and accepts the same manifest written right.
func TestKubeconformRejectsBadManifests(t *testing.T) {
	const good = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 3
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: paysaga:1
          resources: {limits: {cpu: 1, memory: 64Mi}}
`
	out, err := kubeconform(t, []byte(good))
	require.NoError(t, err, out)
	for bad, want := range map[string]string{
		strings.Replace(good, "replicas: 3", `replicas: "3"`, 1):                                             "/spec/replicas': got string, want integer",
		strings.Replace(good, "image: paysaga:1", "image: paysaga:1\n          imagePullPolicyy: Always", 1): "'imagePullPolicyy' not allowed",
		strings.Replace(good, "kind: Deployment", "kind: Deployment\nspecc: {}", 1):                          "'specc' not allowed",
	} {
		out, err := kubeconform(t, []byte(bad))
		require.Error(t, err, "kubeconform accepted:\n%s", bad)
		require.Regexp(t, regexp.QuoteMeta(want), out)
	}
}
