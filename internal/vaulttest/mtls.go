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
	Need(t, BinaryPath(), "the Vault "+Version+" dev server")
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
	now := time.Now()
	tmpl := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		}
	}
	caTmpl := tmpl(1, "vaulttest CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	ca, caKey, err := issue(caTmpl, nil, nil, caFile, "")
	if err != nil {
		return err
	}
	server := tmpl(2, "127.0.0.1")
	server.KeyUsage, server.ExtKeyUsage, server.IPAddresses = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.IPv4(127, 0, 0, 1)}
	if _, _, err := issue(server, ca, caKey, serverCert, serverKey); err != nil {
		return err
	}
	client := tmpl(3, "collector")
	client.KeyUsage, client.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	_, _, err = issue(client, ca, caKey, clientCert, clientKey)
	return err
}

// issue makes a key and a certificate from tmpl, signed by parent (itself
// when nil), and writes them as PEM (the key only when keyFile is set).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	if keyFile != "" {
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		if err := writePEM(keyFile, "EC PRIVATE KEY", keyDER); err != nil {
			return nil, nil, err
		}
	}
	return cert, key, nil
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}
