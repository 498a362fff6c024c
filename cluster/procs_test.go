//go:build cluster

package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one process of the engine, with its output in <dir>/<name>.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t testing.TB, dir, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM, 15*time.Second)
		p.signal(syscall.SIGKILL, 5*time.Second)
		if t.Failed() {
			t.Logf("---- %s (%s), last lines:\n%s", name, logPath, p.tail(3000))
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		return false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// waitReady polls url until it answers 200, failing with the process's log when it exits or
// the time is up.
func waitReady(t testing.TB, p *proc, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before it was ready:\n%s", p.name, p.tail(3000))
		}
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	name := url
	if p != nil {
		name = p.name
	}
	t.Fatalf("%s not ready at %s within %s: %s", name, url, within, last)
}

// client talks to the API instances.
type client struct {
	bases []string
	hc    *http.Client
}

type answer struct {
	Status int
	Body   map[string]any
	Raw    string
	Err    error
}

func (a answer) str(k string) string { s, _ := a.Body[k].(string); return s }

// id is the id of the resource the answer is about: its own, or that of the payment or refund
// a 202 answer carries.
func (a answer) id() string {
	if id := a.str("id"); id != "" {
		return id
	}
	for _, k := range []string{"refund", "payment"} {
		if m, ok := a.Body[k].(map[string]any); ok {
			if id, _ := m["id"].(string); id != "" {
				return id
			}
		}
	}
	return ""
}

func (c *client) do(ctx context.Context, inst int, method, path, token string, body any, hdr ...string) answer {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.bases[inst]+path, rd)
	if err != nil {
		return answer{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Raw: string(raw)}
	_ = json.Unmarshal(raw, &a.Body)
	return a
}

// send retries what has no definitive answer (no answer, 5xx, 429) with the same request —
// the same Idempotency-Key — on the other instance, as a client behind a load balancer would.
func (c *client) send(ctx context.Context, inst int, method, path, token string, body any, hdr ...string) answer {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		a := c.do(ctx, inst, method, path, token, body, hdr...)
		definitive := a.Err == nil && a.Status < 500 && a.Status != http.StatusTooManyRequests
		if definitive || time.Now().After(deadline) || ctx.Err() != nil {
			return a
		}
		time.Sleep(500 * time.Millisecond)
		inst = (inst + 1) % len(c.bases)
	}
}

// sse is an open notification stream.
type sse struct {
	events chan map[string]any
}

func openStream(t testing.TB, ctx context.Context, base, token string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/notifications/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("notification stream: %d %s", resp.StatusCode, b)
	}
	s := &sse{events: make(chan map[string]any, 1000)}
	go func() {
		defer resp.Body.Close()
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var n map[string]any
				if json.Unmarshal([]byte(v), &n) == nil {
					s.events <- n
				}
			}
		}
	}()
	return s
}
