package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// Version is the Vault release the harness runs (the last MPL-2.0 release).
const Version = "1.14.1"

// Server is a running Vault dev server.
type Server struct {
	// Addr is the server's base URL, e.g. http://127.0.0.1:41234.
	Addr string
	// RootToken is the dev server's root token, random per server.
	RootToken string
	// Client is authenticated with RootToken.
	Client *api.Client
	// CAFile is the CA certificate of a TLS server (StartTLS), "" otherwise.
	CAFile string

	cmd *exec.Cmd
	log *bytes.Buffer
}

// BinaryPath returns where `make vault` puts the binary: $VAULT_BIN, or
// $VAULTLIGHTSTEP_CACHE/vault-<Version>/vault, by default in the repo's .cache/.
func BinaryPath() string {
	if p := os.Getenv("VAULT_BIN"); p != "" {
		return p
	}
	dir := os.Getenv("VAULTLIGHTSTEP_CACHE")
	if dir == "" { // the repo's .cache/, as scripts/cache-dir.sh
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".cache")
	}
	return filepath.Join(dir, "vault-"+Version, "vault")
}

// Start runs a dev server for the test and stops it on cleanup. Without the
// binary the test is skipped, saying so, or fails under `make test` (Need).
func Start(t T) *Server {
	t.Helper()
	return startAny(t, BinaryPath(), false)
}

// StartTLS is Start with TLS (Vault's -dev-tls): Addr is https://, and
// CAFile is the generated CA certificate the clients must trust.
func StartTLS(t T) *Server {
	t.Helper()
	return startAny(t, BinaryPath(), true)
}

func startAny(t T, bin string, tls bool) *Server {
	t.Helper()
	Need(t, bin, "the Vault "+Version+" dev server")
	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		s, err := start(t, bin, FreeAddr(t), tls)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("vault dev server did not start: %v", lastErr)
	return nil
}

// StartAt runs a dev server on a given address, e.g. to bring one back on the
// port a component is already configured with.
func StartAt(t T, hostPort string) *Server {
	t.Helper()
	Need(t, BinaryPath(), "the Vault "+Version+" dev server")
	s, err := start(t, BinaryPath(), hostPort, false)
	if err != nil {
		t.Fatalf("vault dev server did not start on %s: %v", hostPort, err)
	}
	return s
}

func start(t T, bin, hostPort string, useTLS bool, extraArgs ...string) (*Server, error) {
	root := randomID()
	home := t.TempDir()
	args := []string{"server", "-dev", "-dev-root-token-id=" + root, "-dev-listen-address=" + hostPort, "-dev-no-store-token"}
	scheme, caFile := "http://", ""
	if useTLS {
		certs := t.TempDir()
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certs)
		scheme, caFile = "https://", filepath.Join(certs, "vault-ca.pem")
	}
	cmd := exec.Command(bin, append(args, extraArgs...)...)
	// A clean environment: no VAULT_* of the developer's leaks in.
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = ChildProcAttr()
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: scheme + hostPort, RootToken: root, CAFile: caFile, cmd: cmd, log: log}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { s.stop(exited) })

	if err := waitHealthy(s.Addr, caFile, exited); err != nil {
		s.stop(exited)
		// The dev server prints its root token; this one is random and dies with the test.
		return nil, fmt.Errorf("%w; server output:\n%s", err, log.String())
	}
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	if caFile != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: caFile}); err != nil {
			return nil, err
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(root)
	s.Client = c
	return s, nil
}

// Stop kills the server (and its process group) now, e.g. to simulate an outage.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (s *Server) stop(exited <-chan error) {
	s.Stop()
	select {
	case err := <-exited:
		_ = err // killed on purpose: its exit status says nothing
	case <-time.After(10 * time.Second):
	}
}

// HostPort returns the server's host:port.
func (s *Server) HostPort() string {
	_, hostPort, _ := strings.Cut(s.Addr, "://")
	return hostPort
}

func waitHealthy(addr, caFile string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before becoming healthy: %v", err)
		default:
		}
		if caFile != "" && client.Transport == nil {
			pem, err := os.ReadFile(caFile) // written by the server as it starts
			if err == nil {
				pool := x509.NewCertPool()
				pool.AppendCertsFromPEM(pem)
				client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
			} else {
				time.Sleep(20 * time.Millisecond) // polling interval
				continue
			}
		}
		resp, err := client.Get(addr + "/v1/sys/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for a condition
	}
	return errors.New("not healthy after 30s")
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr(t T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func ctx(t T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
