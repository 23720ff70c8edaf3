package vaulttest

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// StartVaultProxy runs a real `vault proxy` (Vault's own API proxy) in
// front of s: it logs in with AppRole (auto_auth) and, with
// use_auto_auth_token, adds its own token to every request that has none,
// as Vault Agent and Vault Proxy deployments do. It returns its address.
func (s *Server) StartVaultProxy(t T, roleID, secretID string) string {
	t.Helper()
	dir := t.TempDir()
	addr := FreeAddr(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatalf("vault proxy: %v", err)
		}
		return p
	}
	conf := write("proxy.hcl", fmt.Sprintf(`
vault { address = %q }
auto_auth {
  method "approle" {
    config = {
      role_id_file_path = %q
      secret_id_file_path = %q
      remove_secret_id_file_after_reading = false
    }
  }
}
api_proxy { use_auto_auth_token = true }
listener "tcp" {
  address = %q
  tls_disable = true
}
`, s.Addr, write("role-id", roleID), write("secret-id", secretID), addr))
	exited, log := runProxy(t, conf, dir)
	waitProxied(t, addr, exited, log)
	return "http://" + addr
}

// runProxy starts `vault proxy -config=conf`, stopped (with its children)
// when the test ends; exited closes when it exits, log holds its output.
func runProxy(t T, conf, dir string) (exited chan struct{}, log *bytes.Buffer) {
	cmd := exec.Command(BinaryPath(), "proxy", "-config="+conf)
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = ChildProcAttr()
	log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("vault proxy: %v", err)
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	return exited, log
}

// waitProxied waits until the proxy at addr answers an authenticated read
// with its own token.
func waitProxied(t T, addr string, exited chan struct{}, log *bytes.Buffer) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("vault proxy exited:\n%s", log.String())
		default:
		}
		if resp, err := client.Get("http://" + addr + "/v1/auth/token/lookup-self"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
	t.Fatalf("vault proxy not ready after 30s:\n%s", log.String())
}
