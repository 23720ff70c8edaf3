package kubetest

import (
	"os"
	"path/filepath"
	"time"

	"github.com/vaultlightstep/vaultlightstep/internal/vaulttest"
)

// ProjectedVolume is a directory laid out as the kubelet's atomic writer
// lays out a projected service-account token volume:
//
//	token -> ..data/token
//	..data -> ..2026_12_04_21_30_00.123456789
//	..2026_12_04_21_30_00.123456789/token
//
// Write replaces the token as the kubelet does: a new timestamped
// directory, ..data swapped to it by rename, the old directory removed. A
// reader that opens "token" sees the old or the new token, never a mix.
type ProjectedVolume struct {
	Dir string
	old string
}

// NewProjectedVolume makes the volume and writes its first token.
func NewProjectedVolume(t vaulttest.T, token string) *ProjectedVolume {
	t.Helper()
	v := &ProjectedVolume{Dir: t.TempDir()}
	v.Write(t, token)
	if err := os.Symlink(filepath.Join("..data", "token"), v.TokenFile()); err != nil {
		t.Fatalf("projected volume: %v", err)
	}
	return v
}

// TokenFile is the path a container reads, as configured in jwt_file.
func (v *ProjectedVolume) TokenFile() string { return filepath.Join(v.Dir, "token") }

// Write rotates the token in.
func (v *ProjectedVolume) Write(t vaulttest.T, token string) {
	t.Helper()
	ts := ".." + time.Now().UTC().Format("2006_01_02_15_04_05.000000000")
	if err := os.Mkdir(filepath.Join(v.Dir, ts), 0o755); err != nil {
		t.Fatalf("projected volume: %v", err)
	}
	if err := os.WriteFile(filepath.Join(v.Dir, ts, "token"), []byte(token), 0o600); err != nil {
		t.Fatalf("projected volume: %v", err)
	}
	tmp := filepath.Join(v.Dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatalf("projected volume: %v", err)
	}
	if err := os.Rename(tmp, filepath.Join(v.Dir, "..data")); err != nil {
		t.Fatalf("projected volume: %v", err)
	}
	if v.old != "" {
		if err := os.RemoveAll(filepath.Join(v.Dir, v.old)); err != nil {
			t.Fatalf("projected volume: %v", err)
		}
	}
	v.old = ts
}
