package identity

import (
	"errors"
	"fmt"
	"strings"
)

// ValidTenant says why name cannot be a tenant. Tenants fill secret paths
// and metric series, so a name is short, and made of segments separated by
// '/' (a nested Vault namespace, admin/team-a), each a letter or digit
// followed by letters, digits, '.', '_', '-': no empty segment, and no
// segment that starts with '.', so no ".." or absolute path reaches Vault.
func ValidTenant(name string) error {
	if name == "" || len(name) > 63 {
		return errors.New("a tenant name has 1 to 63 characters")
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" {
			return fmt.Errorf("tenant %q: an empty segment", name)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
			punct := i > 0 && (c == '.' || c == '_' || c == '-')
			if !alnum && !punct {
				return fmt.Errorf("tenant %q: only letters, digits and (not first in a segment) '.', '_', '-', with '/' between segments", name)
			}
		}
	}
	return nil
}
