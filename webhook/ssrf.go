package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Policy says which URLs and addresses deliveries may go to. The zero value is production's:
// https only, public unicast addresses only.
type Policy struct {
	// AllowLoopback lets deliveries go to loopback addresses (127.0.0.0/8, ::1) over plain
	// http too: `paysaga dev` and tests, whose receivers run on the same machine
	// (PAYSAGA_WEBHOOK_ALLOW_LOOPBACK). Private, link-local and the other ranges stay refused.
	AllowLoopback bool
	// Resolver resolves host names at registration (net.DefaultResolver when nil). The dial
	// check does not use it: it sees the address actually connected to.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// ErrRefusedAddress is wrapped by every refusal of an address (at registration or dial time).
var ErrRefusedAddress = errors.New("address not allowed for webhooks")

// blocked are the ranges no delivery may reach, with the reason shown to the merchant.
var blocked = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // 255.255.255.255 included
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("fc00::/7"), "unique local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// CheckAddr refuses an address in any range a delivery must not reach: unspecified,
// loopback (unless AllowLoopback), private, carrier-grade NAT, link-local, multicast,
// documentation and reserved ranges, IPv6 unique-local, and IPv4 addresses wrapped in IPv6
// (IPv4-mapped, NAT64, 6to4, Teredo) whose real destination the check could not see.
func (p Policy) CheckAddr(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: not an IP address", ErrRefusedAddress)
	}
	a = a.WithZone("")
	for _, b := range blocked {
		if b.prefix.Contains(a) {
			if b.why == "loopback" && p.AllowLoopback {
				return nil
			}
			return fmt.Errorf("%w: %s is %s", ErrRefusedAddress, a, b.why)
		}
	}
	return nil
}

// MaxURLLength bounds an endpoint's URL.
const MaxURLLength = 2048

// CheckURL validates an endpoint's URL at registration: absolute, https (http only with
// AllowLoopback), no credentials, no fragment, and a host every address of which CheckAddr
// allows (an IP literal, or a name resolved now). Passing here is not enough to be sent to: the
// dialer checks the address again at every connection (a name may resolve elsewhere later).
func (p Policy) CheckURL(ctx context.Context, raw string) error {
	if len(raw) > MaxURLLength {
		return fmt.Errorf("must be at most %d characters", MaxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowLoopback:
	default:
		return errors.New("must use https")
	}
	if u.User != nil {
		return errors.New("must not carry credentials")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(a)
	}
	if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") || strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		if !p.AllowLoopback {
			return fmt.Errorf("%w: %s is loopback", ErrRefusedAddress, host)
		}
	}
	var r interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	} = net.DefaultResolver
	if p.Resolver != nil {
		r = p.Resolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("host %s does not resolve", host)
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// Control is a net.Dialer Control function that refuses to connect to an address CheckAddr
// refuses. It runs after name resolution, on the address actually dialled, so a name that
// resolves to a public address at registration and to an internal one later (DNS rebinding)
// is still refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrRefusedAddress, address)
	}
	return p.CheckAddr(ap.Addr())
}

// Timeout is how long an endpoint has to answer: a 2xx within it is a delivery.
const Timeout = 10 * time.Second

// Client returns the HTTP client deliveries are sent with: every connection checked by
// Control, no proxy (a proxy would connect for us, unchecked), no redirects followed (a 3xx is
// an answer that is not 2xx), and Timeout for the whole exchange.
func (p Policy) Client() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
	t := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: Timeout,
	}
	return &http.Client{
		Transport:     t,
		Timeout:       Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
