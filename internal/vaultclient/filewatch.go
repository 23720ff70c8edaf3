package vaultclient

import (
	"context"
	"os"
	"strings"
	"time"
)

// watchFile returns a channel closed when the file's trimmed content is no
// longer current. It polls the content rather than using inotify, so atomic
// rename and symlink swaps (Vault Agent sinks, Kubernetes projected volumes)
// are seen too.
func watchFile(ctx context.Context, path, current string, every time.Duration) <-chan struct{} {
	changed := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b, err := os.ReadFile(path)
				if now := strings.TrimSpace(string(b)); err == nil && now != "" && now != current {
					close(changed)
					return
				}
			}
		}
	}()
	return changed
}
