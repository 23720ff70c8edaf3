package vaulttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MTLS is a second listener of a dev server that requires a client
// certificate signed by CAFile (Vault's tls_require_and_verify_client_cert).
type MTLS struct {
	// Addr is the listener's base URL, https://127.0.0.1:<port>.
	Addr string
	// CAFile signed both the listener's certificate and the client's.
	CAFile string
	// CertFile and KeyFile are a client certificate the listener accepts.
	CertFile, KeyFile string
}

// StartWithClientCerts runs a dev server (plain HTTP on Addr, for setting it
// up) with a second listener that requires a client certificate.
func StartWithClientCerts(t T) (*Server, *MTLS) {
	t.Helper()
	dir := t.TempDir()
	m := &MTLS{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client-key.pem"),
	}
	serverCert, serverKey := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if err := writeCertificates(m.CAFile, serverCert, serverKey, m.CertFile, m.KeyFile); err != nil {
		t.Fatalf("certificates: %v", err)
	}
	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		devAddr, mtlsAddr := FreeAddr(t), FreeAddr(t)
		if adjacent(devAddr, mtlsAddr) { // Vault puts a cluster listener on the next port
			continue
		}
		conf := filepath.Join(dir, "mtls.hcl")
		hcl := fmt.Sprintf(`listener "tcp" {
  address                            = %q
  cluster_address                    = %q
  tls_cert_file                      = %q
  tls_key_file                       = %q
  tls_client_ca_file                 = %q
  tls_require_and_verify_client_cert = true
}
`, mtlsAddr, FreeAddr(t), serverCert, serverKey, m.CAFile)
		if err := os.WriteFile(conf, []byte(hcl), 0o600); err != nil {
			t.Fatalf("listener config: %v", err)
		}
		s, err := start(t, BinaryPath(), devAddr, false, "-config="+conf)
		if err == nil {
			m.Addr = "https://" + mtlsAddr
			return s, m
		}
		lastErr = err
	}
	t.Fatalf("vault dev server with a client-certificate listener did not start: %v", lastErr)
	return nil, nil
}

func adjacent(a, b string) bool {
	_, pa, _ := strings.Cut(a, ":")
	_, pb, _ := strings.Cut(b, ":")
	var x, y int
	_, _ = fmt.Sscan(pa, &x)
	_, _ = fmt.Sscan(pb, &y)
	return x-y <= 1 && y-x <= 1
}

// writeCertificates makes a CA, a server certificate for 127.0.0.1 and a
// client certificate, all signed by the CA, valid for a day.
func writeCertificates(caFile, serverCert, serverKey, clientCert, clientKey string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vaulttest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(caFile, "CERTIFICATE", caDER); err != nil {
		return err
	}
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, ips []net.IP, certFile, keyFile string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyFile, "EC PRIVATE KEY", keyDER)
	}
	if err := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)}, serverCert, serverKey); err != nil {
		return err
	}
	return leaf(3, "collector", x509.ExtKeyUsageClientAuth, nil, clientCert, clientKey)
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}
