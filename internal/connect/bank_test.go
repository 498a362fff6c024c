package connect

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// The bank is one host called by many activities at once: after a burst, the connections are
// kept for the next one, not closed past Go's default of two idle per host (a new TCP and TLS
// handshake for every other call under load).
func TestBankClientKeepsItsConnectionsAcrossBursts(t *testing.T) {
	const burst = 16
	var opened atomic.Int64
	var mu sync.Mutex
	gate := make(chan struct{})
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		g := gate
		mu.Unlock()
		arrived.Done()
		<-g // hold every request of the burst until all are in: one connection each
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	c := bankHTTPClient()
	round := func() {
		arrived.Add(burst)
		mu.Lock()
		gate = make(chan struct{})
		g := gate
		mu.Unlock()
		var done sync.WaitGroup
		for range burst {
			done.Go(func() {
				resp, err := c.Get(srv.URL)
				if err == nil {
					_ = resp.Body.Close()
				}
				require.NoError(t, err)
			})
		}
		arrived.Wait()
		close(g)
		done.Wait()
	}
	round()
	require.EqualValues(t, burst, opened.Load())
	round()
	require.EqualValues(t, burst, opened.Load(), "the second burst reuses the first one's connections")
}
