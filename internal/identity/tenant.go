package identity

import (
	"errors"
	"fmt"
)

// ValidTenant says why name cannot be a tenant: tenants name secret paths
// and metric series, so they are short, and letters, digits, '.', '_', '-'
// (never first, so no "..", "/" or leading dot reaches a path).
func ValidTenant(name string) error {
	if name == "" || len(name) > 63 {
		return errors.New("a tenant name has 1 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		punct := i > 0 && (c == '.' || c == '_' || c == '-')
		if !alnum && !punct {
			return fmt.Errorf("tenant %q: only letters, digits and (not first) '.', '_', '-'", name)
		}
	}
	return nil
}
