package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one process of the engine that the run started: it can be killed with SIGKILL and
// started again with the same command line, and its output of every life goes to one log file
// in the run directory.
type proc struct {
	name string
	path string
	args []string
	env  []string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current life ended
	runs int
}

// supervisor owns every process of the run, so that all of them are stopped at the end, on
// Ctrl-C and on the run's own failure.
type supervisor struct {
	dir   string
	mu    sync.Mutex
	procs []*proc
	say   func(format string, args ...any)
}

// start starts a new process named name (its log is <dir>/<name>.log).
func (s *supervisor) start(name, path string, args, env []string) (*proc, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, path: path, args: args, env: env, log: f}
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, p.start()
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.exited() {
		return fmt.Errorf("%s is already running", p.name)
	}
	p.runs++
	fmt.Fprintf(p.log, "\n==== chaos: start %s (life %d) at %s ====\n", p.name, p.runs, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// A process group of its own: a kill reaches whatever it started; and the kernel kills it
	// if this program dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(p.log, "==== chaos: %s exited at %s: %v ====\n", p.name, time.Now().UTC().Format(time.RFC3339Nano), err)
		close(done)
	}()
	return nil
}

// exited reports whether the current life has ended; p.mu is held.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// running reports whether the process is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !p.exited()
}

// signal sends sig to the process group and waits up to wait for the process to end.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return true
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

// kill9 kills the process with SIGKILL, as a crash would, and waits for it to be gone.
func (p *proc) kill9() {
	p.signal(syscall.SIGKILL, 30*time.Second)
}

// stop asks the process to stop (SIGTERM), and kills it if it has not within 15 seconds.
func (p *proc) stop() {
	if !p.signal(syscall.SIGTERM, 15*time.Second) {
		p.kill9()
	}
}

// tail returns the last n bytes of the process's log, for error messages.
func (p *proc) tail(n int64) string {
	f, err := os.Open(p.log.Name())
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

// stopAll stops every process, the last started first (APIs and workers before the servers
// they talk to).
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := append([]*proc(nil), s.procs...)
	s.mu.Unlock()
	var wg sync.WaitGroup
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		if p.name == "temporal" || p.name == "nhsim" {
			continue
		}
		wg.Go(p.stop)
	}
	wg.Wait()
	for _, p := range procs {
		if p.name == "temporal" || p.name == "nhsim" {
			p.stop()
		}
	}
	for _, p := range procs {
		_ = p.log.Close()
	}
}

// run runs a short command to its end, its output appended to the log named name.
func (s *supervisor) run(name, path string, args, env []string, timeout time.Duration) (string, error) {
	f, err := os.OpenFile(filepath.Join(s.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fmt.Fprintf(f, "\n==== chaos: %s %q at %s ====\n", filepath.Base(path), args, time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(path, args...)
	cmd.Env = env
	var out syncBuffer
	cmd.Stdout = io.MultiWriter(f, &out)
	cmd.Stderr = io.MultiWriter(f, &out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err = <-errc:
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-errc
		err = fmt.Errorf("%s timed out after %s", filepath.Base(path), timeout)
	}
	fmt.Fprintf(f, "==== exit: %v ====\n", err)
	return out.String(), err
}

// exitCode is the exit status of a finished command's error (0 for nil, -1 if it did not run).
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
