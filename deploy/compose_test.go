package deploy_test

import (
	"context"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"paysaga/config"
)

// composeSecrets are the variables docker-compose.yml takes from the operator's environment
// and refuses to start without (${VAR:?…}): every password, key and bank credential.
var composeSecrets = []string{
	"MYSQL_ROOT_PASSWORD", "PAYSAGA_MYSQL_PASSWORD", "TEMPORAL_MYSQL_PASSWORD", "REDIS_PASSWORD",
	"RABBITMQ_PASSWORD", "PAYSAGA_JWT_SECRET", "PAYSAGA_ACCOUNT_KEYS", "PAYSAGA_TEMPORAL_PAYLOAD_KEYS",
	"PAYSAGA_NH_BASE_URL", "PAYSAGA_NH_ISCD", "PAYSAGA_NH_ACCESS_TOKEN", "PAYSAGA_NH_FINTECH_ACCOUNT",
}

// operatorEnv is what an operator exports before `docker compose up` (the file's header).
func operatorEnv(except string) []string {
	values := map[string]string{
		"PAYSAGA_ACCOUNT_KEYS":          "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,hmac:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PAYSAGA_TEMPORAL_PAYLOAD_KEYS": "p1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"PAYSAGA_NH_BASE_URL":           "http://nhsim:8090",
		"PAYSAGA_NH_ISCD":               "000001",
		"PAYSAGA_NH_ACCESS_TOKEN":       strings.Repeat("5a", 32),
		"PAYSAGA_NH_FINTECH_ACCOUNT":    "3020000000001",
	}
	var env []string
	for _, name := range composeSecrets {
		if name == except {
			continue
		}
		v, ok := values[name]
		if !ok {
			v = "from-the-environment-" + strings.ToLower(name) + "-0123456789abcdef0123456789"
		}
		env = append(env, name+"="+v)
	}
	return env
}

// loadCompose loads docker-compose.yml with the real compose loader (interpolation, merges,
// validation against the compose schema), every profile active.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(operatorEnv(""))
	require.NoError(t, err)
	return p
}

func load(env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."), cli.WithEnv(env), cli.WithProfiles([]string{"*"}),
		cli.WithDiscardEnvFile)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// The production processes: each runs `paysaga <process>`.
var processes = []string{"api", "worker", "migrate"}

func TestComposeTakesEveryCredentialFromTheEnvironment(t *testing.T) {
	for _, name := range composeSecrets {
		_, err := load(operatorEnv(name))
		require.Error(t, err, "docker-compose.yml starts without %s: a default or committed value stands in for it", name)
		require.Contains(t, err.Error(), name)
	}
	// And no password is written in the file itself.
	p := loadCompose(t)
	operator := map[string]string{}
	for _, kv := range operatorEnv("") {
		k, v, _ := strings.Cut(kv, "=")
		operator[k] = v
	}
	for name, s := range p.Services {
		for k, v := range envOf(s) {
			if strings.Contains(k, "PASSWORD") || strings.Contains(k, "PASS") || strings.HasSuffix(k, "_PWD") ||
				k == "PAYSAGA_JWT_SECRET" || k == "PAYSAGA_ACCOUNT_KEYS" || k == "PAYSAGA_TEMPORAL_PAYLOAD_KEYS" {
				if given, ok := operator[k]; ok {
					require.Equal(t, given, v, "%s: %s is not the operator's", name, k)
				} else {
					require.Contains(t, v, "from-the-environment", "%s: %s is not the operator's", name, k)
				}
			}
		}
		if dsn := envOf(s)["PAYSAGA_DB_DSN"]; dsn != "" {
			c, err := mysql.ParseDSN(dsn)
			require.NoError(t, err)
			require.Contains(t, c.Passwd, "from-the-environment", "%s: the database password is the operator's", name)
		}
	}
}

func TestComposeSetsEverySettingAProcessNeeds(t *testing.T) {
	p := loadCompose(t)
	declared := map[string]bool{}
	for _, v := range config.Vars {
		declared[v.Name] = true
	}
	for _, proc := range processes {
		s, ok := p.Services[proc]
		require.True(t, ok, "no %s service", proc)
		require.Equal(t, types.ShellCommand{proc}, s.Command, "the %s service runs `paysaga %s`", proc, proc)
		env := envOf(s)
		for _, name := range config.Needed(proc) {
			require.NotEmpty(t, strings.TrimSpace(env[name]), "%s needs %s (config.Vars) and docker-compose.yml does not set it", proc, name)
		}
		// What the process itself does at start: Require, then Load.
		getenv := func(k string) string { return env[k] }
		require.NoError(t, config.Require(getenv, proc))
		_, err := config.Load(getenv)
		require.NoError(t, err, "%s's settings do not load", proc)
	}
	for name, s := range p.Services {
		for k := range envOf(s) {
			if strings.HasPrefix(k, "PAYSAGA_") {
				require.True(t, declared[k], "service %s sets %s, which no binary reads (not in config.Vars)", name, k)
			}
		}
	}
}

func TestComposePublishesOnlyTheAPI(t *testing.T) {
	p := loadCompose(t)
	published := map[string][]types.ServicePortConfig{}
	for name, s := range p.Services {
		require.Empty(t, s.Expose, "%s: expose is not needed on the compose network", name)
		if len(s.Ports) > 0 {
			published[name] = s.Ports
		}
	}
	require.Len(t, published["api"], 1)
	require.Equal(t, uint32(8080), published["api"][0].Target)
	// The Web UI, for a local look, on the loopback only.
	require.Len(t, published["temporal-ui"], 1)
	require.Equal(t, "127.0.0.1", published["temporal-ui"][0].HostIP, "the Web UI is published on 127.0.0.1 only")
	delete(published, "api")
	delete(published, "temporal-ui")
	require.Empty(t, published, "nothing else is published: not Temporal's frontend, MySQL, Redis, RabbitMQ nor the simulator")

	ui := envOf(p.Services["temporal-ui"])
	require.Equal(t, "true", ui["TEMPORAL_DISABLE_WRITE_ACTIONS"], "the Web UI cannot cancel, signal or reset workflows")
}

// pinned: an image with a tag that names a version (not latest, not a bare major).
var pinnedTag = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?([-.][0-9A-Za-z.-]+)?$`)

func TestComposeImagesArePinnedToTheMakefilesTemporalVersion(t *testing.T) {
	p := loadCompose(t)
	version := strings.TrimPrefix(makeVar(t, "TEMPORAL_SERVER_VERSION"), "v")
	for name, s := range p.Services {
		if s.Build != nil {
			require.Equal(t, "paysaga:local", s.Image, "%s is built from the Dockerfile", name)
			continue
		}
		repo, tag, ok := strings.Cut(s.Image, ":")
		require.True(t, ok, "%s: image %q has no tag", name, s.Image)
		require.Regexp(t, pinnedTag, tag, "%s: image %q is not pinned to a version", name, s.Image)
		require.NotEqual(t, "temporalio/auto-setup", repo, "auto-setup is no longer built by Temporal")
		switch repo {
		case "temporalio/server":
			require.Equal(t, version, tag, "%s: the Temporal server is the Makefile's TEMPORAL_SERVER_VERSION", name)
		case "temporalio/admin-tools":
			require.True(t, strings.HasPrefix(tag, version+"-") || tag == version,
				"%s: admin-tools %s is not of server version %s", name, tag, version)
		}
	}
	require.Equal(t, "temporalio/server:"+version, p.Services["temporal"].Image)
}

func TestComposeStartOrderHealthAndRestarts(t *testing.T) {
	p := loadCompose(t)
	oneShot := map[string]bool{}
	for name, s := range p.Services {
		if s.Restart == "no" {
			oneShot[name] = true
		}
	}
	require.ElementsMatch(t, []string{"temporal-schema", "temporal-namespace", "migrate", "payctl"}, slices.Collect(mapKeys(oneShot)))
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			require.True(t, ok, "%s depends on %s, which does not exist", name, dep)
			switch d.Condition {
			case types.ServiceConditionHealthy:
				require.NotNil(t, target.HealthCheck, "%s waits for %s to be healthy, but it has no health check", name, dep)
			case types.ServiceConditionCompletedSuccessfully:
				require.True(t, oneShot[dep], "%s waits for the one-shot %s to finish", name, dep)
			default:
				t.Fatalf("%s depends on %s without a condition (%q): it may start before %s is ready", name, dep, d.Condition, dep)
			}
			require.Empty(t, target.Profiles, "%s depends on %s, which runs only in a profile", name, dep)
		}
		if oneShot[name] {
			continue
		}
		require.Equal(t, "unless-stopped", s.Restart, "long-running service %s restarts", name)
		require.NotNil(t, s.HealthCheck, "long-running service %s has no health check", name)
		require.NotEmpty(t, s.HealthCheck.Test, name)
	}
	for _, proc := range []string{"api", "worker"} {
		s := p.Services[proc]
		require.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["migrate"].Condition, "%s starts on a migrated schema", proc)
		require.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["temporal-namespace"].Condition,
			"%s starts once the namespace and its search attributes exist", proc)
		require.Equal(t, types.ServiceConditionHealthy, s.DependsOn["temporal"].Condition)
	}
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, p.Services["temporal"].DependsOn["temporal-schema"].Condition)

	// The worker's health check asks its own /readyz (PAYSAGA_WORKER_HTTP_ADDR).
	w := p.Services["worker"]
	addr := envOf(w)["PAYSAGA_WORKER_HTTP_ADDR"]
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Contains(t, strings.Join(w.HealthCheck.Test, " "), "127.0.0.1:"+port+"/readyz")
	require.Empty(t, w.Ports, "the worker's probe port stays on the compose network")

	// The simulator, whose admin API moves money, only in the dev profile.
	require.Equal(t, []string{"dev"}, p.Services["nhsim"].Profiles)
	// RabbitMQ keeps its durable queues across a re-create: named volume, fixed node name.
	rmq := p.Services["rabbitmq"]
	require.Equal(t, "rabbitmq", rmq.Hostname)
	require.True(t, slices.ContainsFunc(rmq.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/rabbitmq" && p.Volumes[v.Source].Name != ""
	}), "RabbitMQ's data is on a named volume")
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestComposeRunsTemporalWithTemporalConfig(t *testing.T) {
	p := loadCompose(t)
	tmp := p.Services["temporal"]
	env := envOf(tmp)
	require.Equal(t, "mysql8", env["DB"])
	require.Equal(t, "mysql", env["MYSQL_SEEDS"])
	require.Equal(t, "temporal", env["MYSQL_USER"], "Temporal has a user of its own, not root")

	// DYNAMIC_CONFIG_FILE_PATH is relative to /etc/temporal; temporal-config/ is mounted there.
	dcPath := path.Join("/etc/temporal", env["DYNAMIC_CONFIG_FILE_PATH"])
	mountOf := func(s types.ServiceConfig) string {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && path.Base(v.Source) == "temporal-config" {
				require.True(t, v.ReadOnly, "temporal-config/ is mounted read-only")
				return v.Target
			}
		}
		return ""
	}
	require.Equal(t, mountOf(tmp), path.Dir(dcPath), "DYNAMIC_CONFIG_FILE_PATH is not in the mounted temporal-config/")
	_, err := os.Stat(path.Join("../temporal-config", path.Base(dcPath)))
	require.NoError(t, err, "the dynamic config file named by DYNAMIC_CONFIG_FILE_PATH")

	for job, script := range map[string]string{"temporal-schema": "setup-schema.sh", "temporal-namespace": "register-search-attributes.sh"} {
		s := p.Services[job]
		require.True(t, strings.HasPrefix(s.Image, "temporalio/admin-tools:"), job)
		cmd := strings.Join(append(s.Entrypoint, s.Command...), " ")
		require.Contains(t, cmd, mountOf(s)+"/"+script, "%s runs %s from the mounted temporal-config/", job, script)
		_, err := os.Stat(path.Join("../temporal-config", script))
		require.NoError(t, err)
	}
	require.Equal(t, "default", envOf(p.Services["temporal-namespace"])["TEMPORAL_NAMESPACE"])
	require.NotEmpty(t, envOf(p.Services["temporal-namespace"])["TEMPORAL_NAMESPACE_RETENTION"])
	for _, proc := range []string{"api", "worker"} {
		e := envOf(p.Services[proc])
		require.Equal(t, "temporal:7233", e["PAYSAGA_TEMPORAL_ADDRESS"])
		require.Equal(t, "default", e["PAYSAGA_TEMPORAL_NAMESPACE"])
	}
	// The schema job and the server use the same database settings.
	for _, k := range []string{"DB", "MYSQL_SEEDS", "MYSQL_USER", "MYSQL_PWD", "DBNAME", "VISIBILITY_DBNAME"} {
		require.Equal(t, env[k], envOf(p.Services["temporal-schema"])[k], k)
	}
}

// makeVar reads NAME := value from the Makefile.
func makeVar(t *testing.T, name string) string {
	t.Helper()
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(\S+)`).FindSubmatch(mk)
	require.NotNil(t, m, "no %s in the Makefile", name)
	return string(m[1])
}

// buildCommands returns binary name → package of every `go build -o <dir>/<name> <pkg>`.
var goBuild = regexp.MustCompile(`(?:go|\$\(GO\)) build\b[^\n]*?-o\s+(\S+)\s+(\./cmd/[A-Za-z0-9_/]+)`)

func buildCommands(text string) map[string]string {
	out := map[string]string{}
	for _, m := range goBuild.FindAllStringSubmatch(text, -1) {
		out[path.Base(m[1])] = m[2]
	}
	return out
}

func TestDockerfileBuildsWhatMakeBuilds(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	// The Makefile's build target: from "build:" to the next blank line.
	target := regexp.MustCompile(`(?ms)^build:.*?\n\n`).Find(mk)
	require.NotNil(t, target, "no build target in the Makefile")
	want := buildCommands(string(target))
	require.Contains(t, want, "paysaga")
	require.Contains(t, want, "payctl")

	df, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	got := buildCommands(string(df))
	require.Equal(t, want, got, "the Dockerfile builds other binaries than `make build`")
	// Each binary reaches the final image.
	final := string(df[strings.LastIndex(string(df), "\nFROM "):])
	for bin := range want {
		require.Regexp(t, `COPY --from=build [^\n]*/`+bin+`\b`, final, "%s is not copied into the final image", bin)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	require.NoError(t, err)
	require.Contains(t, string(ignore), "bin/", "the 250 MB Temporal CLI in bin/ stays out of the build context")

	p := loadCompose(t)
	for _, proc := range append(processes, "nhsim", "payctl") {
		b := p.Services[proc].Build
		require.NotNil(t, b, "%s is built from the Dockerfile", proc)
		abs, err := os.Getwd()
		require.NoError(t, err)
		require.Equal(t, path.Dir(abs), b.Context, "%s is built from the repository's root", proc)
	}
}
