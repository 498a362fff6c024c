package webhook

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckAddrRefusesEveryInternalRange(t *testing.T) {
	prod, dev := Policy{}, Policy{AllowLoopback: true}
	for _, tc := range []struct {
		addr         string
		devToo       bool // refused even when loopback is allowed
		publicRefuse bool
	}{
		{"0.0.0.0", true, true},
		{"127.0.0.1", false, true},
		{"127.3.4.5", false, true},
		{"::1", false, true},
		{"10.1.2.3", true, true},
		{"172.16.0.1", true, true},
		{"172.31.255.254", true, true},
		{"192.168.1.1", true, true},
		{"169.254.169.254", true, true}, // cloud metadata
		{"fe80::1", true, true},
		{"fe80::1%eth0", true, true},
		{"224.0.0.1", true, true},
		{"ff02::1", true, true},
		{"255.255.255.255", true, true},
		{"100.64.0.1", true, true},
		{"100.127.255.254", true, true},
		{"fc00::1", true, true},
		{"fd12:3456::1", true, true},
		{"::", true, true},
		{"::ffff:127.0.0.1", true, true},
		{"::ffff:10.0.0.1", true, true},
		{"64:ff9b::a00:1", true, true},
		{"2002:a00:1::1", true, true},
	} {
		a := netip.MustParseAddr(tc.addr)
		require.ErrorIs(t, prod.CheckAddr(a), ErrRefusedAddress, tc.addr)
		if tc.devToo {
			require.ErrorIs(t, dev.CheckAddr(a), ErrRefusedAddress, "dev: "+tc.addr)
		} else {
			require.NoError(t, dev.CheckAddr(a), "dev: "+tc.addr)
		}
	}
	for _, ok := range []string{"8.8.8.8", "1.1.1.1", "100.128.0.1", "172.32.0.1", "2606:4700::1111"} {
		require.NoError(t, prod.CheckAddr(netip.MustParseAddr(ok)), ok)
	}
}

// fakeResolver answers every name with the same addresses.
type fakeResolver []netip.Addr

func (f fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return f, nil
}

func TestCheckURLAtRegistration(t *testing.T) {
	ctx := context.Background()
	public := Policy{Resolver: fakeResolver{netip.MustParseAddr("93.184.215.14")}}
	require.NoError(t, public.CheckURL(ctx, "https://hooks.example.com/paysaga?token=x"))
	for _, bad := range []string{
		"http://hooks.example.com/",          // plain http in production
		"ftp://hooks.example.com/",           // not http
		"/relative",                          // not absolute
		"https://user:pw@hooks.example.com/", // credentials
		"https://hooks.example.com/#frag",
		"https://127.0.0.1/",
		"https://[::1]/",
		"https://10.0.0.8:8443/",
		"https://169.254.169.254/latest/meta-data",
		"https://[::ffff:127.0.0.1]/",
		"https://localhost/",
		"https://a.localhost/",
	} {
		require.Error(t, public.CheckURL(ctx, bad), bad)
	}
	// A name that resolves to an internal address is refused at registration.
	for _, internal := range []string{"127.0.0.1", "10.0.0.1", "169.254.169.254", "fd00::1", "100.64.1.1"} {
		p := Policy{Resolver: fakeResolver{netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr(internal)}}
		require.ErrorIs(t, p.CheckURL(ctx, "https://rebind.example.com/"), ErrRefusedAddress, internal)
	}
	// The dev setting lets loopback (and plain http) through, nothing else.
	dev := Policy{AllowLoopback: true, Resolver: fakeResolver{netip.MustParseAddr("127.0.0.1")}}
	require.NoError(t, dev.CheckURL(ctx, "http://127.0.0.1:9999/hook"))
	require.NoError(t, dev.CheckURL(ctx, "http://localhost:9999/hook"))
	require.Error(t, dev.CheckURL(ctx, "http://10.0.0.1/hook"))
	require.Error(t, dev.CheckURL(ctx, "http://192.168.0.10/hook"))
}

// TestDialTimeCheckStopsRebinding: a URL that passed registration (its name resolved to a
// public address then) is refused at connect time when the name now resolves to loopback —
// the dialer checks the address it is about to connect to, not what was checked before.
func TestDialTimeCheckStopsRebinding(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	registration := Policy{Resolver: fakeResolver{netip.MustParseAddr("93.184.215.14")}}
	url := "http://rebind.test:" + port + "/hook"
	require.NoError(t, Policy{AllowLoopback: true, Resolver: registration.Resolver}.CheckURL(context.Background(), url))

	// The name now resolves to 127.0.0.1: the transport's resolver is the system's, so make
	// the dial go through a name that the system resolves to loopback.
	url = "http://localhost:" + port + "/hook"
	a := Send(context.Background(), Policy{}.Client(), Request{URL: url, EventID: "evt_1", Body: []byte(`{}`)}, nil)
	require.Zero(t, a.StatusCode)
	require.Contains(t, a.Error, "not allowed")
	require.Zero(t, hits, "the request must not reach a loopback receiver")

	// Through an IP literal too, and with loopback allowed it goes through.
	a = Send(context.Background(), Policy{}.Client(), Request{URL: srv.URL, EventID: "evt_1", Body: []byte(`{}`)}, nil)
	require.Contains(t, a.Error, "loopback")
	a = Send(context.Background(), Policy{AllowLoopback: true}.Client(), Request{URL: url, EventID: "evt_1", Body: []byte(`{}`)}, nil)
	require.Equal(t, http.StatusOK, a.StatusCode)
	require.Equal(t, 1, hits)
}

func TestClientFollowsNoRedirectAndTimesOut(t *testing.T) {
	target := 0
	final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { target++ }))
	defer final.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c := Policy{AllowLoopback: true}.Client()
	a := Send(context.Background(), c, Request{URL: redirect.URL, EventID: "evt_1", Body: []byte(`{}`)}, nil)
	require.Equal(t, http.StatusTemporaryRedirect, a.StatusCode)
	require.False(t, a.Succeeded())
	require.Zero(t, target)
	require.Equal(t, Timeout, c.Timeout)
	require.Nil(t, c.Transport.(*http.Transport).Proxy)

	// An endpoint slower than the client's deadline is an attempt without an answer.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	short := Policy{AllowLoopback: true}.Client()
	short.Timeout = 200 * time.Millisecond
	a = Send(context.Background(), short, Request{URL: slow.URL, EventID: "evt_1", Body: []byte(`{}`)}, nil)
	require.Zero(t, a.StatusCode)
	require.Contains(t, a.Error, "no answer")
}

func TestSendSignsAndNamesTheEvent(t *testing.T) {
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		body = make([]byte, r.ContentLength)
		_, _ = r.Body.Read(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	a := Send(context.Background(), Policy{AllowLoopback: true}.Client(),
		Request{URL: srv.URL, EventID: "evt_7", Type: "payment.succeeded", Body: []byte(`{"id":"evt_7"}`), Secrets: []string{"s1", "s2"}}, nil)
	require.True(t, a.Succeeded())
	require.Equal(t, "evt_7", got.Get(EventIDHeader))
	require.Equal(t, "payment.succeeded", got.Get(EventTypeHeader))
	require.Equal(t, "application/json", got.Get("Content-Type"))
	require.NoError(t, Verify(body, got.Get(SignatureHeader), "s1"))
	require.NoError(t, Verify(body, got.Get(SignatureHeader), "s2"))
}
