package temporaltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PKI is a test CA with a server certificate (for "temporal.test", "redis.test" and
// 127.0.0.1) and a client certificate, written as PEM files, and a second CA that signed
// nothing here (to check that a wrong CA is refused).
type PKI struct {
	Dir                   string
	CAFile, OtherCAFile   string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	ServerPair            tls.Certificate
	Pool                  *x509.CertPool
}

// NewPKI makes the certificates in a directory of the test's.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		must(os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(err)
		cert, err := x509.ParseCertificate(der)
		must(err)
		return cert, key, der
	}
	leaf := func(name string, serial int64, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, dns []string) (string, string, tls.Certificate) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		must(err)
		kder, err := x509.MarshalECPrivateKey(key)
		must(err)
		c := write(name+".pem", "CERTIFICATE", der)
		k := write(name+"-key.pem", "EC PRIVATE KEY", kder)
		pair, err := tls.LoadX509KeyPair(c, k)
		must(err)
		return c, k, pair
	}
	ca, caKey, caDER := newCA("paysaga test CA")
	_, _, otherDER := newCA("another CA")
	p := &PKI{Dir: dir, CAFile: write("ca.pem", "CERTIFICATE", caDER), OtherCAFile: write("other-ca.pem", "CERTIFICATE", otherDER)}
	p.ServerCert, p.ServerKey, p.ServerPair = leaf("server", 2, ca, caKey, x509.ExtKeyUsageServerAuth, []string{"temporal.test", "redis.test"})
	p.ClientCert, p.ClientKey, _ = leaf("client", 3, ca, caKey, x509.ExtKeyUsageClientAuth, nil)
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(ca)
	return p
}

// TLSProxy terminates TLS (HTTP/2 by ALPN, as gRPC wants) in front of a plain-text address, as
// a load balancer in front of a Temporal frontend does, until the test ends; requireClientCert
// makes it mTLS. It returns the proxy's address.
func TLSProxy(t testing.TB, p *PKI, backend string, requireClientCert bool) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.ServerPair}, NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.Pool
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
				<-done
			})
		}
	})
	return ln.Addr().String()
}
