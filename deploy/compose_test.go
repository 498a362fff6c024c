package deploy_test

import (
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"paysaga/config"
)

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string               `yaml:"image"`
	Build       any                  `yaml:"build"`
	Command     []string             `yaml:"command"`
	Entrypoint  []string             `yaml:"entrypoint"`
	Environment map[string]string    `yaml:"environment"`
	DependsOn   map[string]dependsOn `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Ports    []string `yaml:"ports"`
	Volumes  []string `yaml:"volumes"`
	Profiles []string `yaml:"profiles"`
	Restart  string   `yaml:"restart"`
}

type dependsOn struct {
	Condition string `yaml:"condition"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var f composeFile
	require.NoError(t, yaml.Unmarshal(b, &f), "docker-compose.yml must use the map forms of environment and depends_on")
	require.NotEmpty(t, f.Services)
	return f
}

// interpolated replaces ${VAR:?message} and ${VAR:-default} the way compose would with VAR set.
var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:[?-][^}]*)?\}`)

func interpolated(v string) string {
	return interpolation.ReplaceAllString(v, "value-of-$1-from-the-environment-xxxxxxxxxxxxxxxx")
}

// The production processes: each runs `paysaga <process>`.
var processes = []string{"api", "worker", "migrate"}

func TestComposeSetsEverySettingAProcessNeeds(t *testing.T) {
	f := loadCompose(t)
	declared := map[string]bool{}
	for _, v := range config.Vars {
		declared[v.Name] = true
	}
	for _, p := range processes {
		s, ok := f.Services[p]
		require.True(t, ok, "no %s service", p)
		require.Equal(t, []string{p}, s.Command, "the %s service runs `paysaga %s`", p, p)
		for _, name := range config.Needed(p) {
			require.NotEmpty(t, strings.TrimSpace(s.Environment[name]), "%s needs %s (config.Vars) and docker-compose.yml does not set it", p, name)
		}
		// What the process itself does at start: Require, then Load.
		getenv := func(k string) string { return interpolated(s.Environment[k]) }
		require.NoError(t, config.Require(getenv, p))
		_, err := config.Load(getenv)
		require.NoError(t, err, "%s's settings do not load", p)
	}
	for name, s := range f.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "PAYSAGA_") {
				require.True(t, declared[k], "service %s sets %s, which no binary reads (not in config.Vars)", name, k)
			}
		}
	}
	// No token or sealing key is committed: compose refuses to start without them.
	for p, names := range map[string][]string{"api": {"PAYSAGA_JWT_SECRET", "PAYSAGA_ACCOUNT_KEYS"}, "worker": {"PAYSAGA_ACCOUNT_KEYS"}} {
		for _, name := range names {
			require.True(t, strings.HasPrefix(f.Services[p].Environment[name], "${"+name+":?"),
				"%s: %s comes from the operator's environment and is required", p, name)
		}
	}
}

// listeners returns the ports each service listens on inside the compose network.
func listeners(t *testing.T, f composeFile) map[string][]int {
	t.Helper()
	wellKnown := map[string][]int{ // by image repository
		"mysql":                 {3306},
		"redis":                 {6379},
		"rabbitmq":              {5672, 15672},
		"temporalio/auto-setup": {7233},
		"temporalio/ui":         {8080},
	}
	out := map[string][]int{}
	for name, s := range f.Services {
		if s.Image != "" {
			repo, _, _ := strings.Cut(s.Image, ":")
			out[name] = append(out[name], wellKnown[repo]...)
		}
		// Ours: the API's PAYSAGA_HTTP_ADDR, the simulator's --addr.
		if addr := s.Environment["PAYSAGA_HTTP_ADDR"]; addr != "" {
			out[name] = append(out[name], port(t, addr))
		}
		if i := slices.Index(s.Command, "--addr"); i >= 0 && i+1 < len(s.Command) {
			out[name] = append(out[name], port(t, s.Command[i+1]))
		}
	}
	return out
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	require.NoError(t, err, hostport)
	n, err := strconv.Atoi(p)
	require.NoError(t, err, hostport)
	return n
}

// addresses returns the host:port every setting of s points at, by setting.
func addresses(t *testing.T, s service) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range s.Environment {
		switch k {
		case "PAYSAGA_DB_DSN":
			c, err := mysql.ParseDSN(v)
			require.NoError(t, err)
			require.Equal(t, "tcp", c.Net)
			out[k] = c.Addr
		case "PAYSAGA_REDIS_ADDR", "PAYSAGA_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS":
			out[k] = v
		case "PAYSAGA_AMQP_URL", "PAYSAGA_NH_BASE_URL":
			u, err := url.Parse(v)
			require.NoError(t, err)
			out[k] = u.Host
		case "MYSQL_SEEDS": // temporalio/auto-setup
			out[k] = net.JoinHostPort(v, s.Environment["DB_PORT"])
		}
	}
	return out
}

func TestComposeAddressesNameServicesThatListenThere(t *testing.T) {
	f := loadCompose(t)
	listen := listeners(t, f)
	checked := 0
	for name, s := range f.Services {
		for setting, addr := range addresses(t, s) {
			host, p, err := net.SplitHostPort(addr)
			require.NoError(t, err, "%s %s=%q", name, setting, addr)
			target, ok := f.Services[host]
			require.True(t, ok, "%s: %s points at %q, which is not a compose service", name, setting, host)
			n, _ := strconv.Atoi(p)
			require.Contains(t, listen[host], n, "%s: %s points at port %d of %s, which listens on %v", name, setting, n, host, listen[host])
			// It starts only once what it talks to is up.
			dep, ok := s.DependsOn[host]
			require.True(t, ok, "%s talks to %s (%s) but does not depend on it", name, host, setting)
			require.Equal(t, "service_healthy", dep.Condition, "%s waits for %s to be healthy", name, host)
			require.NotNil(t, target.Healthcheck, "%s has no health check", host)
			checked++
		}
		for _, m := range s.Ports {
			parts := strings.Split(m, ":")
			n, err := strconv.Atoi(parts[len(parts)-1])
			require.NoError(t, err, "%s ports %q", name, m)
			require.Contains(t, listen[name], n, "%s publishes port %d, where nothing listens", name, n)
		}
	}
	require.GreaterOrEqual(t, checked, 15, "every DSN and URL was looked at")

	// The addresses the README and docs/operations.md give are the same as `make run`'s.
	require.Contains(t, f.Services["api"].Ports, "8080:8080")
	require.Contains(t, f.Services["temporal"].Ports, "7233:7233")
	require.Contains(t, f.Services["temporal-ui"].Ports, "8233:8080")
	require.Contains(t, f.Services["mysql"].Ports, "3306:3306")
}

func TestComposeStartOrder(t *testing.T) {
	f := loadCompose(t)
	for name, s := range f.Services {
		for dep, d := range s.DependsOn {
			target, ok := f.Services[dep]
			require.True(t, ok, "%s depends on %s, which does not exist", name, dep)
			switch d.Condition {
			case "service_healthy":
				require.NotNil(t, target.Healthcheck, "%s waits for %s to be healthy, but it has no health check", name, dep)
			case "service_completed_successfully":
				require.Equal(t, "no", target.Restart, "%s waits for the one-shot %s to finish", name, dep)
			default:
				t.Fatalf("%s depends on %s without a condition (%q): it may start before %s is ready", name, dep, d.Condition, dep)
			}
		}
		if s.Restart != "no" && name != "worker" && len(s.Profiles) == 0 {
			require.NotNil(t, s.Healthcheck, "long-running service %s has no health check", name)
		}
	}
	for _, p := range []string{"api", "worker"} {
		s := f.Services[p]
		require.Equal(t, "service_completed_successfully", s.DependsOn["migrate"].Condition, "%s starts on a migrated schema", p)
		require.Equal(t, "service_completed_successfully", s.DependsOn["register-search-attributes"].Condition,
			"%s starts once the search attributes exist (workflows set them at start)", p)
		require.Equal(t, "service_healthy", s.DependsOn["temporal"].Condition)
	}
	require.Equal(t, "service_healthy", f.Services["migrate"].DependsOn["mysql"].Condition)
}

func TestComposeRunsTemporalOnMySQLWithTemporalConfig(t *testing.T) {
	f := loadCompose(t)
	tmp := f.Services["temporal"]
	require.True(t, strings.HasPrefix(tmp.Image, "temporalio/auto-setup:"))
	require.Equal(t, "mysql8", tmp.Environment["DB"])

	// DYNAMIC_CONFIG_FILE_PATH is relative to /etc/temporal; temporal-config/ is mounted there.
	dcPath := path.Join("/etc/temporal", tmp.Environment["DYNAMIC_CONFIG_FILE_PATH"])
	mounted := ""
	for _, v := range tmp.Volumes {
		parts := strings.Split(v, ":")
		if parts[0] == "./temporal-config" {
			mounted = parts[1]
		}
	}
	require.NotEmpty(t, mounted, "temporal-config/ is not mounted into the temporal service")
	require.Equal(t, mounted, path.Dir(dcPath), "DYNAMIC_CONFIG_FILE_PATH is not in the mounted temporal-config/")
	_, err := os.Stat(path.Join("../temporal-config", path.Base(dcPath)))
	require.NoError(t, err, "the dynamic config file named by DYNAMIC_CONFIG_FILE_PATH")

	reg := f.Services["register-search-attributes"]
	script := strings.Join(append(reg.Entrypoint, reg.Command...), " ")
	require.Contains(t, script, "register-search-attributes.sh")
	found := false
	for _, v := range reg.Volumes {
		parts := strings.Split(v, ":")
		if parts[0] == "./temporal-config" && strings.Contains(script, parts[1]+"/register-search-attributes.sh") {
			found = true
		}
	}
	require.True(t, found, "the registration job runs the script from the mounted temporal-config/")
	require.Equal(t, "no", reg.Restart)

	ui := f.Services["temporal-ui"]
	require.True(t, strings.HasPrefix(ui.Image, "temporalio/ui:"))
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

	f := loadCompose(t)
	for _, p := range append(processes, "nhsim") {
		require.Equal(t, ".", f.Services[p].Build, "%s is built from the Dockerfile", p)
	}
}
