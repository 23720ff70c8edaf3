package vaultclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// AuditHash returns the HMAC Vault's audit device writes for input
// ("hmac-sha256:..."), with sys/audit-hash/<device>: the key that joins a
// credential to the audit entries that issued and used it. The caller's
// token needs update on sys/audit-hash/<device>. Errors never hold input.
func AuditHash(ctx context.Context, v Logical, device, input string) (string, error) {
	device = strings.Trim(device, "/")
	sec, err := v.WriteWithContext(ctx, "sys/audit-hash/"+device, map[string]any{"input": input})
	if err != nil {
		return "", fmt.Errorf("sys/audit-hash/%s: %w", device, err)
	}
	if sec == nil {
		return "", fmt.Errorf("sys/audit-hash/%s: empty response", device)
	}
	h, _ := sec.Data["hash"].(string)
	if !strings.HasPrefix(h, "hmac-sha256:") {
		return "", errors.New("sys/audit-hash/" + device + ": no hmac-sha256 hash in the response")
	}
	return h, nil
}
