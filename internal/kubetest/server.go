package kubetest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// Version is the Kubernetes release `make kube` builds.
const Version = "1.34.4"

// Issuer is the service-account token issuer the API server is started with.
const Issuer = "https://kubernetes.default.svc.cluster.local"

// Server is a running kube-apiserver with its etcd.
type Server struct {
	// URL is the API server's base URL, https://127.0.0.1:<port>.
	URL string
	// CAPEM is the PEM of the certificate authority its serving
	// certificate chains to (self-signed by the API server at start).
	CAPEM string
	// AdminToken authenticates as system:masters.
	AdminToken string
	// SigningKey signs service-account tokens: tests use it to make tokens
	// the API server would have made, e.g. one already expired.
	SigningKey *rsa.PrivateKey

	http *http.Client
}

// Dir returns where `make kube` puts the binaries:
// $VAULTLIGHTSTEP_CACHE/kube-<Version>, by default in the repo's .cache/.
func Dir() string {
	dir := os.Getenv("VAULTLIGHTSTEP_CACHE")
	if dir == "" { // the repo's .cache/, as scripts/cache-dir.sh
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".cache")
	}
	return filepath.Join(dir, "kube-"+Version)
}

// Start runs etcd and kube-apiserver for the test and stops both on
// cleanup. Without the binaries the test is skipped, saying so, or fails
// under `make test` (vaulttest.Need).
func Start(t vaulttest.T) *Server {
	t.Helper()
	bin := Dir()
	vaulttest.Need(t, filepath.Join(bin, "kube-apiserver"), "kube-apiserver "+Version)
	vaulttest.Need(t, filepath.Join(bin, "etcd"), "etcd (with kube-apiserver "+Version+")")
	dir := t.TempDir()
	key, err := writeSigningKey(dir)
	if err != nil {
		t.Fatalf("service-account key: %v", err)
	}
	s := &Server{AdminToken: randomHex(16), SigningKey: key}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(s.AdminToken+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatalf("token file: %v", err)
	}
	etcd := vaulttest.FreeAddr(t)
	startProcess(t, "etcd", filepath.Join(bin, "etcd"),
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+etcd, "--advertise-client-urls", "http://"+etcd,
		"--listen-peer-urls", "http://"+vaulttest.FreeAddr(t), "--log-level", "warn")
	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		addr := vaulttest.FreeAddr(t)
		_, port, _ := cutPort(addr)
		certs := filepath.Join(dir, "certs-"+port)
		apiserver := startProcess(t, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
			"--etcd-servers", "http://"+etcd,
			"--service-account-issuer", Issuer,
			"--service-account-key-file", filepath.Join(dir, "sa.pub"),
			"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
			"--secure-port", port, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
			"--cert-dir", certs, "--authorization-mode", "Node,RBAC",
			"--token-auth-file", filepath.Join(dir, "tokens.csv"),
			"--service-cluster-ip-range", "10.96.0.0/24")
		s.URL = "https://" + addr
		if lastErr = s.waitReady(certs, apiserver); lastErr == nil {
			t.Cleanup(s.http.CloseIdleConnections) // before the processes stop: no client goroutine outlives the test
			return s
		}
		apiserver.stop()
	}
	t.Fatalf("kube-apiserver did not become ready: %v", lastErr)
	return nil
}

// waitReady waits for the self-signed serving certificate, then for
// /readyz, which takes about 10 s.
func (s *Server) waitReady(certs string, p *process) error {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before ready:\n%s", p.tail())
		default:
		}
		if s.http == nil {
			if pemBytes, err := os.ReadFile(filepath.Join(certs, "apiserver.crt")); err == nil {
				pool := x509.NewCertPool()
				if pool.AppendCertsFromPEM(pemBytes) {
					s.CAPEM = string(pemBytes)
					s.http = &http.Client{Timeout: 30 * time.Second,
						Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
				}
			}
		}
		if s.http != nil {
			if code, _ := s.call(http.MethodGet, "/readyz", nil, nil); code == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not a wait for a condition
	}
	return errors.New("not ready after 90s:\n" + p.tail())
}

// process is a started binary, in its own process group, killed on cleanup.
type process struct {
	cmd    *exec.Cmd
	log    *lockedBuffer
	exited chan struct{}
}

func startProcess(t vaulttest.T, name, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = vaulttest.ChildProcAttr()
	p := &process{cmd: cmd, log: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	return p
}

func (p *process) stop() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// tail is the end of the process's output, for a failure message.
func (p *process) tail() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	b := p.log.buf.Bytes()
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// lockedBuffer is a process's output, written by exec's copier and read
// by a failing test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func writeSigningKey(dir string) (*rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return nil, err
	}
	return key, os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
